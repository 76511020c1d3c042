# Renders with their shapes degraded toward the samples' fidelity: each image's object mask is
# blurred, pushed by a smooth random field and thresholded again (notched, wobbly outlines),
# then repainted with the image's own object and background colors. usage: degrade.py AMP
import json, sys, numpy as np
from PIL import Image
amp = float(sys.argv[1]); rng = np.random.default_rng(7)
def blur(a, k):
    r = np.exp(-0.5 * (np.arange(-3, 4) / k) ** 2); r /= r.sum()
    a = np.apply_along_axis(lambda v: np.convolve(v, r, 'same'), 0, a)
    return np.apply_along_axis(lambda v: np.convolve(v, r, 'same'), 1, a)
out = []
for line in open('/tmp/h3/rmatch/manifest.jsonl'):
    r = json.loads(line)
    im = np.asarray(Image.open(r['path']).convert('RGB')).astype(np.float64)
    bg = np.median(np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]]), axis=0)
    d = np.linalg.norm(im - bg, axis=2)
    fg = im[d >= np.percentile(d, 98) * 0.9].mean(axis=0)
    a = np.clip(d / max(np.linalg.norm(fg - bg), 1e-6), 0, 1)
    field = blur(rng.standard_normal(a.shape), 1.2)
    field /= field.std() + 1e-9
    m = (blur(a, 0.8) + amp * field * (a > 0.02) > 0.5).astype(np.float64)
    m = blur(m, 0.5)
    px = bg * (1 - m[..., None]) + fg * m[..., None]
    p = 'images/%s.png' % r['id']
    Image.fromarray(np.clip(px.round(), 0, 255).astype(np.uint8)).save('/tmp/h3/rdeg/' + p)
    r['path'] = p; out.append(r)
with open('/tmp/h3/rdeg/manifest.jsonl', 'w') as f:
    for r in out: f.write(json.dumps(r) + '\n')
