#!/usr/bin/env python3
"""diffusers reference steps for the shape world's scheduler (configs/world/scheduler.json).

The world model samples with settings SD1.5 never uses: the cosine schedule
(squaredcos_cap_v2), v-prediction, "trailing" timesteps and x0 clipped to [-1, 1].
scripts/make_fixtures.py covers SD1.5's settings only; this covers these.

Writes tests/fixtures/reference/world_scheduler.safetensors (float64 alphas_cumprod, float32
tensors, int64 timesteps). CPU, torch.manual_seed(0), inputs drawn in the order listed below.
Run: python scripts/make_world_scheduler_fixture.py
"""
import json
import os

import torch
from safetensors.torch import save_file
from diffusers import DDIMScheduler, DDPMScheduler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "world", "scheduler.json")
OUT = os.path.join(ROOT, "tests", "fixtures", "reference", "world_scheduler.safetensors")


def main():
    torch.manual_seed(0)
    with open(CONFIG) as f:
        cfg = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    ddim = DDIMScheduler.from_config(cfg)
    ddpm = DDPMScheduler.from_config(cfg)
    assert torch.equal(ddim.alphas_cumprod, ddpm.alphas_cumprod)
    refs = {"alphas_cumprod": ddpm.alphas_cumprod.double()}

    shape = (2, 12, 4, 4)
    # DDIM, 10 trailing steps: the first step (t = 999) and the last (t = 99 -> final alpha).
    ddim.set_timesteps(10)
    refs["ddim10_timesteps"] = ddim.timesteps.clone().long()
    for name, t in [("first", 999), ("last", 99)]:
        mo = 2 * torch.randn(shape)  # large enough that some x0 are clipped
        x = torch.randn(shape)
        out = ddim.step(mo, t, x, eta=0.0)
        refs[f"ddim_{name}_model_output"] = mo
        refs[f"ddim_{name}_sample"] = x
        refs[f"ddim_{name}_prev"] = out.prev_sample
        refs[f"ddim_{name}_x0"] = out.pred_original_sample

    # DDPM, 50 trailing steps: first (999), middle (499), last (19 -> alpha 1).
    ddpm.set_timesteps(50)
    refs["ddpm50_timesteps"] = ddpm.timesteps.clone().long()
    for name, t in [("first", 999), ("mid", 499), ("last", 19)]:
        mo = 2 * torch.randn(shape)
        x = torch.randn(shape)
        seed = {"first": 1, "mid": 2, "last": 3}[name]
        prev = ddpm.step(mo, t, x, generator=torch.Generator().manual_seed(seed)).prev_sample
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        refs[f"ddpm_{name}_model_output"] = mo
        refs[f"ddpm_{name}_sample"] = x
        refs[f"ddpm_{name}_noise"] = noise
        refs[f"ddpm_{name}_prev"] = prev

    # The training pair: x_t = add_noise(x0, noise, t) and the v target get_velocity(x0, noise, t).
    x0 = torch.randn(4, 12, 4, 4).clamp(-1, 1)
    noise = torch.randn(4, 12, 4, 4)
    t = torch.tensor([0, 300, 700, 999], dtype=torch.int64)
    refs.update(x0=x0, noise=noise, t=t, noisy=ddpm.add_noise(x0, noise, t),
                velocity=ddpm.get_velocity(x0, noise, t))
    save_file({k: v.contiguous() for k, v in refs.items()}, OUT)
    print(f"wrote {OUT}: {len(refs)} tensors")


if __name__ == "__main__":
    main()
