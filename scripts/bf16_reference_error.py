#!/usr/bin/env python3
"""How far diffusers' own half-precision UNet lands from its float32 output on the parity fixture.

    python3 scripts/bf16_reference_error.py

Loads tests/fixtures/tiny-sd/unet, runs the `unet` reference inputs in float32 and again with
the model and inputs cast to bfloat16 and float16 (CPU), and prints max|half - f32| / max|f32|,
the measure the Rust parity tests bound. It tells whether a half-precision miss of our UNet
(measured on CUDA) is ours or the dtype's.
"""
import os

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")


def main():
    r = load_file(os.path.join(FIX, "reference", "unet.safetensors"))
    unet = UNet2DConditionModel.from_pretrained(os.path.join(FIX, "tiny-sd", "unet")).float().eval()
    args = (r["sample"].float(), r["timestep"], r["encoder_hidden_states"].float())
    with torch.no_grad():
        ref = unet(*args).sample
        print(f"float32 vs the fixture: {((ref - r['out']).abs().max() / r['out'].abs().max()).item():.3e}")
        for dt in (torch.bfloat16, torch.float16):
            u = UNet2DConditionModel.from_pretrained(os.path.join(FIX, "tiny-sd", "unet")).to(dt).eval()
            out = u(args[0].to(dt), args[1], args[2].to(dt)).sample.float()
            err = ((out - ref).abs().max() / ref.abs().max()).item()
            print(f"diffusers {str(dt).split('.')[-1]} vs float32: {err:.3e}")


if __name__ == "__main__":
    main()
