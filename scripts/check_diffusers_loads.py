"""Check that model folders this tool writes load in diffusers / transformers with no missing,
unexpected or mismatched tensor, and run:

  python scripts/check_diffusers_loads.py --sd DIR [--clip DIR]

DIR for --sd: a diffusers-layout Stable Diffusion folder (`rlhf-t2i init-tiny --out X` writes X/sd,
`rlhf-t2i finetune --out Y` writes Y/model); for --clip: a CLIP folder (X/clip).
Needs scripts/requirements.txt.
"""
import argparse, torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPModel, CLIPTextModel

ap = argparse.ArgumentParser()
ap.add_argument("--sd")
ap.add_argument("--clip")
a = ap.parse_args()
checks = []
if a.sd:
    checks += [(UNet2DConditionModel, a.sd, dict(subfolder="unet")), (AutoencoderKL, a.sd, dict(subfolder="vae")),
               (CLIPTextModel, a.sd, dict(subfolder="text_encoder"))]
if a.clip:
    checks.append((CLIPModel, a.clip, {}))
for cls, path, kw in checks:
    model, info = cls.from_pretrained(path, output_loading_info=True, **kw)
    bad = {k: v for k, v in info.items() if v}
    assert not bad, f"{cls.__name__} from {path}: {bad}"
    print(f"ok  {cls.__name__:<22} {path} {kw.get('subfolder', '')}")
if a.sd:
    pipe = StableDiffusionPipeline.from_pretrained(a.sd, safety_checker=None, requires_safety_checker=False)
    out = pipe("Two dogs.", num_inference_steps=2, output_type="np", height=pipe.unet.config.sample_size * 4,
               width=pipe.unet.config.sample_size * 4).images
    assert out.shape[0] == 1 and (out == out).all()
    print(f"ok  StableDiffusionPipeline.from_pretrained({a.sd}) samples an image of shape {out.shape[1:]}")
