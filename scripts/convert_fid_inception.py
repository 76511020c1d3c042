#!/usr/bin/env python3
"""Convert pytorch-fid's Inception weights (.pth) to safetensors (float32, same tensor names).

    python scripts/convert_fid_inception.py pt_inception-2015-12-05-6726825d.pth fid_inception.safetensors

The .pth comes from
https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
(pytorch-fid downloads it into ~/.cache/torch/hub/checkpoints/). Needs torch and safetensors;
if pytorch-fid is installed the tensor names/shapes are also checked against its architecture.
"""
import sys

import torch
from safetensors.torch import save_file

if len(sys.argv) != 3:
    sys.exit(__doc__)
src, dst = sys.argv[1], sys.argv[2]
sd = torch.load(src, map_location="cpu", weights_only=True)
out = {k: v.detach().to(torch.float32).contiguous() for k, v in sd.items()
       if not k.endswith("num_batches_tracked")}
try:
    import importlib.util, os
    spec = importlib.util.spec_from_file_location(
        "mif", os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_inception_fixtures.py"))
    mif = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mif)
    want = dict(mif.param_names_and_shapes())
    got = {k: tuple(v.shape) for k, v in out.items()}
    assert got == want, (f"missing {sorted(set(want) - set(got))[:5]}, unexpected "
                         f"{sorted(set(got) - set(want))[:5]}, shape mismatch "
                         f"{[k for k in want if k in got and got[k] != want[k]][:5]}")
    print(f"names/shapes match pytorch-fid's fid_inception_v3 ({len(want)} tensors)")
except ImportError:
    pass
save_file(out, dst)
print(f"wrote {len(out)} tensors ({sum(v.numel() for v in out.values())} values) to {dst}")
