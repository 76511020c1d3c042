#!/usr/bin/env python3
"""diffusers reference for a UNet with resnet_time_scale_shift = "scale_shift".

SD1.5 adds the time embedding to each resnet's features before its second GroupNorm; with
"scale_shift" (configs/world/unet-ss.json) it becomes a per-channel scale and shift after
it. scripts/make_fixtures.py's tiny SD covers the first; this covers the second, at the world
UNet's shape (12 input channels: 2x2 pixel patches; three levels, the top one without
attention, one channel per GroupNorm group there) and toy width.

Writes tests/fixtures/tiny-world-unet/unet/ (config.json, float32 safetensors) and
tests/fixtures/reference/unet_scale_shift.safetensors: sample, timestep (int64),
encoder_hidden_states, out = unet(...).sample, and for loss = mean(out^2) the gradient norm of
every parameter (`gradnorm.NAME`). CPU, float32, torch.manual_seed(0); every parameter re-drawn
(0.1 randn, norms 1 + 0.1 randn) so no output is trivially zero, then the inputs in the order
listed. Run: python scripts/make_scale_shift_fixture.py (made with torch 2.15.0, diffusers 0.42.1).
"""
import os

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "tests", "fixtures", "tiny-world-unet", "unet")
OUT = os.path.join(ROOT, "tests", "fixtures", "reference", "unet_scale_shift.safetensors")


def main():
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=12,
        out_channels=12,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=16,
        attention_head_dim=2,
        resnet_time_scale_shift="scale_shift",
    )
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    unet.save_pretrained(MODEL, safe_serialization=True)

    sample = torch.randn(2, 12, 8, 8)
    timestep = torch.tensor([10, 700], dtype=torch.int64)
    context = torch.randn(2, 5, 16)
    out = unet(sample, timestep, encoder_hidden_states=context).sample
    loss = out.pow(2).mean()
    loss.backward()
    refs = {
        "sample": sample,
        "timestep": timestep,
        "encoder_hidden_states": context,
        "out": out.detach(),
        "loss": loss.detach().reshape(1),
    }
    for name, p in unet.named_parameters():
        refs[f"gradnorm.{name}"] = p.grad.norm().reshape(1)
    save_file({k: v.contiguous() for k, v in refs.items()}, OUT)
    print(f"{OUT}: {len(refs)} tensors; out max |{out.abs().max():.3f}|")


if __name__ == "__main__":
    main()
