"""Check that model folders this tool writes (`rlhf-t2i init-tiny --out DIR`, and later the
fine-tuned model folders) load in diffusers / transformers with no missing, unexpected or
mismatched tensor, and run.

Usage: python scripts/check_diffusers_loads.py DIR     (needs scripts/requirements.txt)
"""
import sys, torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPModel, CLIPTextModel

root = sys.argv[1]
checks = [
    (UNet2DConditionModel, f"{root}/sd", dict(subfolder="unet")),
    (AutoencoderKL, f"{root}/sd", dict(subfolder="vae")),
    (CLIPTextModel, f"{root}/sd", dict(subfolder="text_encoder")),
    (CLIPModel, f"{root}/clip", {}),
]
for cls, path, kw in checks:
    model, info = cls.from_pretrained(path, output_loading_info=True, **kw)
    bad = {k: v for k, v in info.items() if v and k != "error_msgs" or (k == "error_msgs" and v)}
    assert not bad, f"{cls.__name__} from {path}: {bad}"
    print(f"ok  {cls.__name__:<22} {path} {kw.get('subfolder', '')}")
unet = UNet2DConditionModel.from_pretrained(f"{root}/sd", subfolder="unet")
with torch.no_grad():
    out = unet(torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, unet.config.cross_attention_dim)).sample
assert torch.isfinite(out).all()
print("ok  UNet forward is finite")
