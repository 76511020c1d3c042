#!/usr/bin/env python3
"""Tiny random-weight Stable Diffusion / CLIP models and reference outputs for the Rust tests.

Writes (relative to the repository root):
  tests/fixtures/tiny-sd/      diffusers StableDiffusionPipeline layout (fp16 safetensors)
  tests/fixtures/tiny-clip/    transformers CLIPModel (fp16 safetensors) + tokenizer
  tests/fixtures/reference/    float32 reference outputs (*.safetensors) + README.md

Every model is built from a config (no downloads). After construction every parameter is
re-drawn (weights 0.1*randn, norm weights 1+0.1*randn, biases 0.1*randn; CLIP's logit_scale is
kept at its init value) and rounded to float16, so that the fp16 files on disk hold exactly the
weights the float32 reference outputs were computed with. All computation: CPU, float32,
torch.manual_seed(0).

Needs assets/clip-tokenizer/tokenizer.json (scripts/make_tokenizer.py). Run:

    pip install -r scripts/requirements.txt
    python scripts/make_fixtures.py
"""
import copy
import json
import os
import shutil

import torch
from torch import nn
from safetensors.torch import save_file, load_file

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # bitwise-reproducible CPU reductions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
SD_DIR = os.path.join(FIX, "tiny-sd")
CLIP_DIR = os.path.join(FIX, "tiny-clip")
REF_DIR = os.path.join(FIX, "reference")
TOK_ASSET = os.path.join(ROOT, "assets", "clip-tokenizer")

SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "prediction_type": "epsilon",
    "trained_betas": None,
}

UNET_CFG = dict(
    sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32, attention_head_dim=4, norm_num_groups=32, use_linear_projection=False,
    flip_sin_to_cos=True, freq_shift=0, act_fn="silu", center_input_sample=False,
)
VAE_CFG = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64, 64),
    down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    layers_per_block=1, norm_num_groups=32, sample_size=32, scaling_factor=0.18215,
)
TEXT_CFG = dict(
    vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
    num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
    layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    projection_dim=32,
)
VISION_CFG = dict(
    image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
    num_attention_heads=4, hidden_act="quick_gelu", layer_norm_eps=1e-5, num_channels=3,
    projection_dim=32,
)

DESCR = {}  # file -> {tensor: description}


def redraw_(model, keep=()):
    """Re-draw every parameter (so nothing is zero-initialised) and round it to fp16."""
    norm_types = (nn.LayerNorm, nn.GroupNorm)
    n = 0
    with torch.no_grad():
        for mname, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                full = f"{mname}.{pname}" if mname else pname
                if full not in keep:
                    if isinstance(mod, norm_types) and pname == "weight":
                        p.copy_(1.0 + 0.1 * torch.randn(p.shape))
                    else:  # weights and biases alike
                        p.copy_(0.1 * torch.randn(p.shape))
                p.copy_(p.half().float())
                n += 1
    assert n == len(list(model.parameters()))
    return model


def maxdiff(a, b):
    a, b = a.float(), b.float()
    d = (a - b).abs().max().item()
    r = d / max(b.abs().max().item(), 1e-30)
    return d, r


def check(name, a, b, tol=0.0):
    d, r = maxdiff(a, b)
    status = "OK" if d <= tol else "FAIL"
    print(f"  [{status}] {name}: max abs {d:.3g}, rel {r:.3g}")
    assert d <= tol, name


def save_ref(fname, tensors, descr):
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().clone().contiguous()
        if v.dtype.is_floating_point:
            v = v.float()
        else:
            v = v.long()
        out[k] = v
    save_file(out, os.path.join(REF_DIR, fname))
    DESCR[fname] = (descr, {k: (tuple(v.shape), str(v.dtype).replace("torch.", ""))
                            for k, v in out.items()})
    shown = [f"{k}{tuple(v.shape)}" for k, v in out.items() if not k.startswith("gradnorm.")]
    ngn = sum(k.startswith("gradnorm.") for k in out)
    print(f"wrote reference/{fname}: " + ", ".join(shown)
          + (f", gradnorm.* x{ngn}" if ngn else ""))


def link_tokenizer_json(dir_, up):
    """Replace a saved tokenizer.json with a relative symlink to the asset (keeps fixtures small)."""
    path = os.path.join(dir_, "tokenizer.json")
    asset = os.path.join(TOK_ASSET, "tokenizer.json")
    saved, ref = json.load(open(path, encoding="utf-8")), json.load(open(asset, encoding="utf-8"))
    for key in ("model", "normalizer", "pre_tokenizer", "post_processor", "added_tokens"):
        assert saved[key] == ref[key], f"saved tokenizer.json differs from the asset in {key}"
    os.remove(path)
    os.symlink(os.path.join(*([".."] * up), "assets", "clip-tokenizer", "tokenizer.json"), path)
    assert os.path.exists(path)


def main():
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, PNDMScheduler,
                           StableDiffusionPipeline, UNet2DConditionModel)
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig,
                              CLIPTextModel, CLIPTokenizer)

    torch.manual_seed(0)
    for d in (SD_DIR, CLIP_DIR, REF_DIR):
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)

    # ---------------------------------------------------------------- models
    unet = redraw_(UNet2DConditionModel(**UNET_CFG)).eval()
    vae = redraw_(AutoencoderKL(**VAE_CFG)).eval()
    text_encoder = redraw_(CLIPTextModel(CLIPTextConfig(**TEXT_CFG))).eval()
    clip_cfg = CLIPConfig(text_config=dict(TEXT_CFG), vision_config=dict(VISION_CFG),
                          projection_dim=32, logit_scale_init_value=2.6592)
    clip = redraw_(CLIPModel(clip_cfg), keep=("logit_scale",)).eval()
    tokenizer = CLIPTokenizer.from_pretrained(TOK_ASSET, model_max_length=77)
    assert len(tokenizer) == 49408 and tokenizer.pad_token_id == 49407
    for name, m in [("unet", unet), ("vae", vae), ("text_encoder", text_encoder), ("clip", clip)]:
        print(f"{name}: {sum(p.numel() for p in m.parameters()):,} parameters")

    def ids(texts):
        return tokenizer(texts, padding="max_length", max_length=77, truncation=True,
                         return_tensors="pt").input_ids

    refs = {}
    with torch.no_grad():
        # 1. UNet
        sample = torch.randn(2, 4, 8, 8)
        timestep = torch.tensor([10, 980], dtype=torch.int64)
        ehs = torch.randn(2, 77, 32)
        out = unet(sample, timestep, encoder_hidden_states=ehs).sample
        refs["unet"] = dict(sample=sample, timestep=timestep, encoder_hidden_states=ehs, out=out)

        # 2. VAE
        image = torch.rand(2, 3, 32, 32) * 2 - 1
        dist = vae.encode(image).latent_dist
        latent = torch.randn(2, 4, 8, 8)
        decoded = vae.decode(latent).sample
        refs["vae"] = dict(image=image, posterior_mean=dist.mean, posterior_std=dist.std,
                           latent=latent, decoded=decoded)

        # 3. SD text encoder
        te_ids = ids(["A red colored dog.", ""])
        te_out = text_encoder(te_ids)
        refs["clip_text"] = dict(input_ids=te_ids, last_hidden_state=te_out.last_hidden_state,
                                 pooler_output=te_out.pooler_output)

        # 4. CLIPModel
        cm_ids = ids(["Two dogs.", "A dog on the moon.", "A green colored cake."])
        pixel_values = torch.randn(2, 3, 32, 32)

        def feats(x):
            return x if torch.is_tensor(x) else x.pooler_output

        text_embeds = feats(clip.get_text_features(input_ids=cm_ids))
        image_embeds = feats(clip.get_image_features(pixel_values=pixel_values))
        tout = clip.text_model(input_ids=cm_ids)
        vout = clip.vision_model(pixel_values=pixel_values)
        full = clip(input_ids=cm_ids, pixel_values=pixel_values)
        check("CLIPModel.text_embeds == get_text_features", full.text_embeds,
              text_embeds / text_embeds.norm(dim=-1, keepdim=True), 1e-6)
        refs["clip_model"] = dict(
            input_ids=cm_ids, pixel_values=pixel_values, text_embeds=text_embeds,
            image_embeds=image_embeds, text_pooler_output=tout.pooler_output,
            vision_pooler_output=vout.pooler_output,
            text_last_hidden_state=tout.last_hidden_state,
            vision_last_hidden_state=vout.last_hidden_state,
            logit_scale=clip.logit_scale.detach().reshape(1),
            logits_per_image=full.logits_per_image)

        # 5. schedulers
        ddim = DDIMScheduler.from_config(SD15_SCHEDULER)
        ddim.set_timesteps(50)
        ddim_ts = ddim.timesteps.clone().long()
        t_ddim = ddim_ts[10]
        mo = torch.randn(1, 4, 8, 8)
        smp = torch.randn(1, 4, 8, 8)
        st = ddim.step(mo, t_ddim, smp, eta=0.0)
        prev_t = t_ddim - 1000 // 50

        ddpm = DDPMScheduler.from_config(SD15_SCHEDULER)
        ac = ddpm.alphas_cumprod.clone()
        check("DDIM alphas_cumprod == DDPM alphas_cumprod", ddim.alphas_cumprod, ac)
        t_ddpm = 500
        ddpm_mo = torch.randn(1, 4, 8, 8)
        ddpm_smp = torch.randn(1, 4, 8, 8)
        ddpm_prev = ddpm.step(ddpm_mo, t_ddpm, ddpm_smp,
                              generator=torch.Generator().manual_seed(0)).prev_sample
        noise_drawn = torch.randn(ddpm_mo.shape, generator=torch.Generator().manual_seed(0))
        # DDPM posterior mean / std (epsilon prediction, fixed_small variance, no clipping)
        a_t, a_prev = ac[t_ddpm], ac[t_ddpm - 1]
        b_t, b_prev = 1 - a_t, 1 - a_prev
        cur_a = a_t / a_prev
        cur_b = 1 - cur_a
        x0 = (ddpm_smp - b_t ** 0.5 * ddpm_mo) / a_t ** 0.5
        mean = (a_prev ** 0.5 * cur_b / b_t) * x0 + (cur_a ** 0.5 * b_prev / b_t) * ddpm_smp
        std = (torch.clamp(b_prev / b_t * cur_b, min=1e-20)) ** 0.5
        check("DDPM step == mean + std*noise", ddpm_prev, mean + std * noise_drawn, 1e-5)

        an_x0 = torch.randn(2, 4, 8, 8)
        an_noise = torch.randn(2, 4, 8, 8)
        an_t = torch.tensor([0, 999], dtype=torch.int64)
        noisy = ddpm.add_noise(an_x0, an_noise, an_t)
        refs["scheduler"] = dict(
            alphas_cumprod=ac, ddim_timesteps=ddim_ts,
            ddim_t=t_ddim.reshape(1), ddim_prev_t=prev_t.reshape(1), model_output=mo,
            sample=smp, ddim_prev_sample=st.prev_sample,
            ddim_pred_original_sample=st.pred_original_sample,
            ddpm_t=torch.tensor([t_ddpm]), ddpm_model_output=ddpm_mo, ddpm_sample=ddpm_smp,
            ddpm_variance_noise=noise_drawn, ddpm_prev_mean=mean, ddpm_std=std.reshape(1),
            ddpm_prev_sample=ddpm_prev,
            x0=an_x0, noise=an_noise, noisy_t=an_t, noisy=noisy)

        # 6. 4-step DDIM sampling with classifier-free guidance
        cond_ids, uncond_ids = ids(["A red colored dog."]), ids([""])
        cond_emb = text_encoder(cond_ids)[0]
        uncond_emb = text_encoder(uncond_ids)[0]
        init_latents = torch.randn(1, 4, 8, 8)
        sched = DDIMScheduler.from_config(SD15_SCHEDULER)
        sched.set_timesteps(4)
        assert sched.init_noise_sigma == 1.0
        lat = init_latents * sched.init_noise_sigma
        steps = []
        ctx = torch.cat([uncond_emb, cond_emb])
        for t in sched.timesteps:
            inp = sched.scale_model_input(torch.cat([lat, lat]), t)
            eps = unet(inp, t, encoder_hidden_states=ctx).sample
            u, c = eps.chunk(2)
            eps = u + 7.5 * (c - u)
            lat = sched.step(eps, t, lat).prev_sample
            steps.append(lat)
        final = lat
        img = vae.decode(final / 0.18215).sample
        refs["sample"] = dict(cond_ids=cond_ids, uncond_ids=uncond_ids,
                              cond_embeddings=cond_emb, uncond_embeddings=uncond_emb,
                              latents=init_latents, timesteps=sched.timesteps.clone().long(),
                              step_latents=torch.stack(steps), final_latents=final, image=img)

        pipe = StableDiffusionPipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
            scheduler=DDIMScheduler.from_config(SD15_SCHEDULER), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        pl = pipe("A red colored dog.", negative_prompt="", num_inference_steps=4,
                  guidance_scale=7.5, latents=init_latents.clone(), height=32, width=32,
                  output_type="latent").images
        check("explicit DDIM/CFG loop == StableDiffusionPipeline(output_type='latent')",
              final, pl, 1e-6)

    # 7. UNet gradients (training path): loss = mean((unet(x, t, c) - target)^2)
    target = torch.randn(2, 4, 8, 8)
    unet.zero_grad()
    r = refs["unet"]
    pred = unet(r["sample"], r["timestep"], encoder_hidden_states=r["encoder_hidden_states"]).sample
    loss = ((pred - target) ** 2).mean()
    loss.backward()
    grad_sel = ["conv_in.weight", "time_embedding.linear_1.weight",
                "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
                "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                "down_blocks.0.attentions.0.transformer_blocks.0.norm1.weight",
                "down_blocks.0.attentions.0.norm.weight",
                "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight",
                "up_blocks.1.resnets.2.conv2.weight", "conv_norm_out.weight", "conv_out.bias"]
    params = dict(unet.named_parameters())
    gr = dict(target=target, loss=loss.detach().reshape(1))
    for k in grad_sel:
        gr["grad." + k] = params[k].grad
    zero = []
    for k, p in params.items():
        gr["gradnorm." + k] = p.grad.norm().reshape(1)
        if p.grad.abs().max() == 0:
            zero.append(k)
    print(f"  UNet gradient: loss {loss.item():.6f}; parameters with all-zero grad: {zero or 'none'}")
    assert not zero
    refs["unet_grad"] = gr
    unet.zero_grad()

    # ---------------------------------------------------------------- save models (fp16)
    pipe_fp16 = StableDiffusionPipeline(
        vae=copy.deepcopy(vae).half(), text_encoder=copy.deepcopy(text_encoder).half(),
        tokenizer=tokenizer, unet=copy.deepcopy(unet).half(),
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe_fp16.save_pretrained(SD_DIR, safe_serialization=True)
    with open(os.path.join(SD_DIR, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SD15_SCHEDULER, f, indent=2)
        f.write("\n")
    link_tokenizer_json(os.path.join(SD_DIR, "tokenizer"), 4)
    # transformers 5.x saves CLIPTextModel WITHOUT the `text_model.` key prefix; real SD1.5
    # checkpoints (and candle's clip loader) use `text_model.embeddings...`. Re-key to the SD1.5
    # layout (transformers 5 loads either form; checked below).
    te_file = os.path.join(SD_DIR, "text_encoder", "model.safetensors")
    te_sd = load_file(te_file)
    if not all(k.startswith("text_model.") for k in te_sd):
        te_sd = {("text_model." + k if not k.startswith("text_model.") else k): v
                 for k, v in te_sd.items()}
        save_file(te_sd, te_file, metadata={"format": "pt"})

    copy.deepcopy(clip).half().save_pretrained(CLIP_DIR, safe_serialization=True)
    tokenizer.save_pretrained(CLIP_DIR)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}) \
        .save_pretrained(CLIP_DIR)
    link_tokenizer_json(CLIP_DIR, 3)

    # ---------------------------------------------------------------- references
    descr = {
        "unet.safetensors": "UNet2DConditionModel (tiny-sd/unet) forward: "
                            "out = unet(sample, timestep, encoder_hidden_states).sample; "
                            "one timestep per batch element.",
        "vae.safetensors": "AutoencoderKL (tiny-sd/vae): posterior_mean/std = "
                           "vae.encode(image).latent_dist.mean/.std (quant_conv applied, logvar "
                           "clamped to [-30, 20], std = exp(logvar/2)); decoded = "
                           "vae.decode(latent).sample (post_quant_conv applied; no scaling).",
        "clip_text.safetensors": "SD text encoder (tiny-sd/text_encoder, CLIPTextModel) on "
                                 "['A red colored dog.', ''] tokenized with max_length padding to "
                                 "77 (pad = <|endoftext|> 49407), no attention mask: "
                                 "last_hidden_state (after final_layer_norm) and pooler_output "
                                 "(last_hidden_state at the first 49407 of each row).",
        "clip_model.safetensors": "tiny CLIPModel (tiny-clip) on ['Two dogs.', 'A dog on the "
                                  "moon.', 'A green colored cake.'] (max_length 77, no mask) and "
                                  "randn pixel_values: text_embeds = get_text_features "
                                  "(text_projection of text pooler_output, NOT normalised), "
                                  "image_embeds = get_image_features (visual_projection of "
                                  "vision pooler_output = post_layernorm(CLS)), "
                                  "vision_last_hidden_state = encoder output BEFORE "
                                  "post_layernorm, text_last_hidden_state after final_layer_norm; "
                                  "logits_per_image = exp(logit_scale) * cos-sim (2,3).",
        "scheduler.safetensors": "SD1.5 scheduler config. DDIMScheduler.set_timesteps(50) "
                                 "('leading' spacing + steps_offset 1 -> 981, 961, ..., 1), "
                                 "step at index 10 (t=781 -> prev t=761), eta=0; "
                                 "DDPMScheduler.step at t=500 (prev 499) with "
                                 "variance_noise = randn(generator seed 0), "
                                 "prev = ddpm_prev_mean + ddpm_std * ddpm_variance_noise; "
                                 "add_noise: noisy = sqrt(ac[t])*x0 + sqrt(1-ac[t])*noise.",
        "sample.safetensors": "4-step DDIM (eta 0) + classifier-free guidance 7.5 with tiny-sd: "
                              "timesteps 751, 501, 251, 1; each step eps = unet(cat[lat, lat], t, "
                              "cat[uncond_embeddings, cond_embeddings]); eps = u + 7.5*(c-u); "
                              "step_latents[i] = latents after step i; image = "
                              "vae.decode(final_latents / 0.18215).sample (range not clamped). "
                              "Equals StableDiffusionPipeline(output_type='latent').",
        "unet_grad.safetensors": "Gradients of loss = mean((unet(sample, timestep, "
                                 "encoder_hidden_states).sample - target)^2) with the inputs of "
                                 "unet.safetensors: full gradients `grad.<param>` for a few "
                                 "parameters and the L2 norm `gradnorm.<param>` (shape (1,)) of "
                                 "the gradient of EVERY UNet parameter (all non-zero).",
    }
    for name, tensors in refs.items():
        save_ref(f"{name}.safetensors", tensors, descr[f"{name}.safetensors"])

    # ---------------------------------------------------------------- self-checks from disk
    print("self-check: reload fp16 files as float32 and recompute")
    u2 = UNet2DConditionModel.from_pretrained(os.path.join(SD_DIR, "unet"),
                                              dtype=torch.float32).eval()
    v2 = AutoencoderKL.from_pretrained(os.path.join(SD_DIR, "vae"),
                                       dtype=torch.float32).eval()
    t2 = CLIPTextModel.from_pretrained(os.path.join(SD_DIR, "text_encoder"),
                                       dtype=torch.float32).eval()
    c2 = CLIPModel.from_pretrained(CLIP_DIR, dtype=torch.float32).eval()
    tok2 = CLIPTokenizer.from_pretrained(os.path.join(SD_DIR, "tokenizer"))
    assert all(k.startswith("text_model.") for k in load_file(te_file))
    for a, b in [(unet, u2), (vae, v2), (text_encoder, t2), (clip, c2)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), "weights changed on the fp16 round trip"
    L = {k[:-len(".safetensors")]: load_file(os.path.join(REF_DIR, k))
         for k in os.listdir(REF_DIR) if k.endswith(".safetensors")}
    with torch.no_grad():
        r = L["unet"]
        check("unet out", u2(r["sample"], r["timestep"], r["encoder_hidden_states"]).sample,
              r["out"])
        r = L["vae"]
        d2 = v2.encode(r["image"]).latent_dist
        check("vae posterior_mean", d2.mean, r["posterior_mean"])
        check("vae posterior_std", d2.std, r["posterior_std"])
        check("vae decoded", v2.decode(r["latent"]).sample, r["decoded"])
        r = L["clip_text"]
        assert torch.equal(tok2(["A red colored dog.", ""], padding="max_length", max_length=77,
                                return_tensors="pt").input_ids, r["input_ids"])
        o = t2(r["input_ids"])
        check("clip_text last_hidden_state", o.last_hidden_state, r["last_hidden_state"])
        check("clip_text pooler_output", o.pooler_output, r["pooler_output"])
        r = L["clip_model"]
        check("clip text_embeds", feats(c2.get_text_features(input_ids=r["input_ids"])),
              r["text_embeds"])
        check("clip image_embeds", feats(c2.get_image_features(pixel_values=r["pixel_values"])),
              r["image_embeds"])
        pipe2 = StableDiffusionPipeline.from_pretrained(SD_DIR, dtype=torch.float32)
        assert isinstance(pipe2.scheduler, PNDMScheduler)
        pipe2.scheduler = DDIMScheduler.from_config(pipe2.scheduler.config)
        pipe2.set_progress_bar_config(disable=True)
        r = L["sample"]
        lat2 = pipe2("A red colored dog.", negative_prompt="", num_inference_steps=4,
                     guidance_scale=7.5, latents=r["latents"].clone(), height=32, width=32,
                     output_type="latent").images
        check("reloaded pipeline final_latents", lat2, r["final_latents"], 1e-6)
        check("reloaded pipeline image", pipe2.vae.decode(lat2 / 0.18215).sample, r["image"],
              1e-5)
    print("ranges: " + ", ".join(f"{n}.{k}: [{v.min().item():.3g}, {v.max().item():.3g}]"
                                 for n, t in L.items() if n != "unet_grad"
                                 for k, v in t.items() if v.dtype == torch.float32
                                 and k in ("out", "decoded", "last_hidden_state", "image",
                                           "text_embeds", "image_embeds", "final_latents")))
    write_readme()


def write_readme():
    lines = [
        "# Reference outputs",
        "",
        "Generated by `scripts/make_fixtures.py` (versions: `scripts/requirements.txt`) on CPU in",
        "float32 from the tiny random-weight models in `../tiny-sd` and `../tiny-clip`, whose",
        "weights are stored in float16 and were rounded to float16 BEFORE these outputs were",
        "computed (so loading the fp16 files into f32 reproduces them up to op-order rounding).",
        "`torch.manual_seed(0)`; all inputs drawn in the order listed. Floats are float32, ids and",
        "timesteps int64. Shapes below are exact.",
        "",
        "Regenerate: `python scripts/make_tokenizer.py --wheel ...` (once), then",
        "`python scripts/make_fixtures.py`. The script is deterministic (identical bytes on",
        "rerun) and checks that reloading the fp16 files reproduces every output exactly.",
        "",
        "## The models",
        "",
        "- `../tiny-sd/`: diffusers `StableDiffusionPipeline` layout written by `save_pretrained`:",
        "  `unet` (UNet2DConditionModel, block_out_channels (32, 64), layers_per_block 2,",
        "  CrossAttnDownBlock2D + DownBlock2D / UpBlock2D + CrossAttnUpBlock2D, cross_attention_dim",
        "  32, attention_head_dim 4 = number of heads), `vae` (AutoencoderKL, (32, 64, 64), 4 latent",
        "  channels, 32x32 image <-> 8x8 latent, scaling_factor 0.18215), `text_encoder`",
        "  (CLIPTextModel, vocab 49408, hidden 32, 2 layers, 4 heads, quick_gelu; keys re-written",
        "  with the `text_model.` prefix that SD1.5 checkpoints have), `tokenizer`, `scheduler`",
        "  (SD1.5's PNDM config, verbatim). See the `config.json` files for every value.",
        "- `../tiny-clip/`: transformers `CLIPModel` (text as above; vision 32x32 image, patch 8,",
        "  hidden 32, 2 layers, 4 heads; projection_dim 32), `preprocessor_config.json` (CLIP",
        "  mean/std, 32 px).",
        "- Weights: every parameter re-drawn after construction (weights and biases 0.1*randn,",
        "  LayerNorm/GroupNorm weights 1 + 0.1*randn; CLIP `logit_scale` kept at",
        "  2.6592, stored as fp16 2.66015625), then rounded to fp16; files are fp16 safetensors.",
        "- `tokenizer.json` in both folders is a relative symlink to",
        "  `assets/clip-tokenizer/tokenizer.json` (3.6 MB, not duplicated).",
        "- `../tokenizer_cases.jsonl`: 300 prompts with open_clip `SimpleTokenizer` ids",
        "  (`<|startoftext|>` ... `<|endoftext|>`, unpadded), from `scripts/make_tokenizer.py`.",
        "",
        "A float32 reimplementation evaluated in a different op order should match to roughly",
        "1e-5 relative; the 4-step guided sample amplifies differences (final latents reach |17|).",
        "",
    ]
    for fname, (descr, tensors) in DESCR.items():
        lines += [f"## `{fname}`", "", descr, "", "| tensor | shape | dtype |", "|---|---|---|"]
        grads = [(k, v) for k, v in tensors.items() if k.startswith("gradnorm.")]
        for k, (shape, dt) in tensors.items():
            if k.startswith("gradnorm."):
                continue
            lines.append(f"| `{k}` | {list(shape)} | {dt} |")
        if grads:
            lines.append(f"| `gradnorm.<name>` for all {len(grads)} UNet parameters "
                         f"(diffusers names) | [1] | float32 |")
        lines.append("")
    with open(os.path.join(REF_DIR, "README.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
