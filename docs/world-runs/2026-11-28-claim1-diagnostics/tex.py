import json,sys,os
import numpy as np
from PIL import Image
def tex(path):
    x=np.asarray(Image.open(path).convert('RGB'),dtype=np.float32)/255
    med=np.median(x.reshape(-1,3),0)
    flat=np.abs(x-med).max(-1)<0.12
    # 2x2 checker component
    c=x[0::2,0::2]-x[0::2,1::2]-x[1::2,0::2]+x[1::2,1::2]
    lap=np.abs(4*x[1:-1,1:-1]-x[:-2,1:-1]-x[2:,1:-1]-x[1:-1,:-2]-x[1:-1,2:]).mean(-1)
    f=flat[1:-1,1:-1]
    return lap[f].mean() if f.any() else np.nan, np.abs(c).mean()
for m in sys.argv[1:]:
    d=os.path.dirname(m); L=[json.loads(l) for l in open(m)]
    key='path' if 'path' in L[0] else 'file'
    v=np.array([tex(os.path.join(d,r[key])) for r in L[:400]])
    print(m, len(v), 'flat-region laplacian %.4f  2x2-checker %.4f'%(np.nanmean(v[:,0]),v[:,1].mean()))
