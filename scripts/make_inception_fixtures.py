#!/usr/bin/env python3
"""Reference fixtures for the Rust port of pytorch-fid's Inception-v3 (FID variant) and of its
Frechet distance. No weights are downloaded: the architecture is built exactly as
pytorch_fid.inception.fid_inception_v3() builds it, every parameter / BatchNorm buffer is
re-drawn deterministically, and pytorch-fid's own InceptionV3 wrapper is then constructed with
`load_state_dict_from_url` patched to return those random weights (so the genuine
fid_inception_v3() code path, including its strict load_state_dict, is what produces the
reference outputs).

Writes (relative to the repository root), see tests/fixtures/inception/README.md:
  tests/fixtures/inception/pt_inception_random.safetensors  weights, float16 (randn init, ~48 MB)
  tests/fixtures/inception/reference.safetensors            outputs for those weights (float32)
  tests/fixtures/inception/reference_hashinit.safetensors   outputs for integer-hash weights that
                                                            the Rust side can regenerate itself
                                                            (no weight file needed)
  tests/fixtures/inception/frechet.safetensors              Frechet-distance cases (float64)

Deterministic: CPU, one thread, fixed seeds; a rerun writes identical bytes (on the same
machine / library versions). Run:

    pip install -r scripts/requirements.txt
    python scripts/make_inception_fixtures.py [--skip-weights]
"""
import argparse
import contextlib
import copy
import hashlib
import io
import math
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file as save_np
from safetensors.torch import load_file, save_file

import pytorch_fid.inception as pfi
from pytorch_fid.fid_score import calculate_frechet_distance

OUT = "tests/fixtures/inception"
torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------
# architecture (identical to pytorch_fid.inception.fid_inception_v3, minus the weight download)
# --------------------------------------------------------------------------------------------
def fid_inception_arch():
    inception = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    inception.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    inception.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    inception.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    inception.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    inception.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    inception.Mixed_7b = pfi.FIDInceptionE_1(1280)
    inception.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return inception


def param_names_and_shapes():
    sd = fid_inception_arch().state_dict()
    return [(k, tuple(v.shape)) for k, v in sd.items() if not k.endswith("num_batches_tracked")]


# --------------------------------------------------------------------------------------------
# weight init 1: torch randn (seed 0), rounded to fp16 -> stored in a weight file
# --------------------------------------------------------------------------------------------
def randn_state_dict():
    g = torch.Generator().manual_seed(0)
    sd = {}
    for name, shape in param_names_and_shapes():
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            v = r * math.sqrt(2.0 / fan_in)  # kaiming (ReLU) so activations stay O(1)
        elif name.endswith("bn.weight"):
            v = 1.0 + 0.1 * r
        elif name.endswith("bn.bias") or name.endswith("bn.running_mean") or name == "fc.bias":
            v = 0.1 * r
        elif name.endswith("bn.running_var"):
            v = 1.0 + 0.1 * torch.rand(shape, generator=g, dtype=torch.float32)
        elif name == "fc.weight":
            v = r * math.sqrt(1.0 / shape[1])
        else:
            raise KeyError(name)
        sd[name] = v.half().float().contiguous()
    return sd


# --------------------------------------------------------------------------------------------
# weight init 2: integer hash, every value exactly representable in f32 -> reproducible in Rust
# --------------------------------------------------------------------------------------------
M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix64_at(seed, n):
    """z_i = mix(seed + (i+1)*0x9E3779B97F4A7C15) for i in 0..n, all mod 2^64."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def hash_values(name, shape):
    """r_i = ((z_i >> 40) mod 2049) - 1024  (integer in [-1024, 1024]);
    value_i = offset + r_i * 2^-e  (exact in f32), with (offset, e) per tensor kind."""
    n = int(np.prod(shape))
    z = splitmix64_at(fnv1a64(name), n)
    r = ((z >> np.uint64(40)) % np.uint64(2049)).astype(np.int64) - 1024
    if name.endswith("conv.weight"):
        fan_in = shape[1] * shape[2] * shape[3]
        off, e = 0.0, (150000 * fan_in).bit_length() // 2  # std 0.76..1.5x kaiming
    elif name == "fc.weight":
        off, e = 0.0, (150000 * shape[1]).bit_length() // 2
    elif name.endswith("bn.weight"):
        off, e = 1.0, 13
    elif name.endswith("bn.running_var"):
        off, e, r = 1.0, 14, r + 1024  # [1, 1.125]
    else:  # bn.bias, bn.running_mean, fc.bias
        off, e = 0.0, 13
    v = off + r.astype(np.float64) * 2.0 ** (-e)
    v32 = v.astype(np.float32)
    assert np.array_equal(v32.astype(np.float64), v)  # exact
    return v32.reshape(shape)


def hash_state_dict():
    return {k: torch.from_numpy(hash_values(k, s)) for k, s in param_names_and_shapes()}


# --------------------------------------------------------------------------------------------
# genuine pytorch-fid wrapper, fed with the given weights instead of the downloaded ones
# --------------------------------------------------------------------------------------------
def build_pytorch_fid_model(sd, output_blocks):
    def fake_load(url, progress=True, **kw):
        assert url == pfi.FID_WEIGHTS_URL
        return {k: v.clone() for k, v in sd.items()}

    orig = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = fake_load
    try:
        model = pfi.InceptionV3(output_blocks, resize_input=True, normalize_input=True,
                                requires_grad=False, use_fid_inception=True)
    finally:
        pfi.load_state_dict_from_url = orig
    return model.eval()


def make_images():
    g = torch.Generator().manual_seed(1)
    return torch.rand((2, 3, 64, 64), generator=g, dtype=torch.float32)


def run_reference(sd, images, tag):
    model = build_pytorch_fid_model(sd, [0, 1, 2, 3])
    inner = model.blocks[0][0]  # Conv2d_1a_3x3 (sanity: the weights really were loaded)
    assert torch.equal(inner.conv.weight, sd["Conv2d_1a_3x3.conv.weight"])
    with torch.no_grad():
        outs = model(images)
        # the exact FID feature path: InceptionV3([3]) -> (N,2048,1,1) -> squeeze
        pool3_only = build_pytorch_fid_model(sd, [3])(images)[0].squeeze(3).squeeze(2)
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        resized = (2 * x - 1)[0]
        m64 = copy.deepcopy(model).double()
        pool3_f64 = m64(images.double())[3].squeeze(3).squeeze(2)
    pool3 = outs[3].squeeze(3).squeeze(2)
    assert torch.equal(pool3, pool3_only)
    res = {
        "images": images,
        "resized": resized,
        "pool3": pool3,
        "pool3_f64": pool3_f64,
        "block0_mean": outs[0].mean((2, 3)),
        "block1_mean": outs[1].mean((2, 3)),
        "block2_mean": outs[2].mean((2, 3)),
    }
    for i, o in enumerate(outs):
        print(f"[{tag}] block{i} {tuple(o.shape)} mean {o.mean():.4f} rms {o.pow(2).mean().sqrt():.4f}")
    d = (pool3.double() - pool3_f64).abs()
    print(f"[{tag}] pool3 f32 vs f64: max abs {d.max():.3e}, max rel {(d / pool3_f64.abs().max()).max():.3e}")
    return {k: v.contiguous() for k, v in res.items()}


# --------------------------------------------------------------------------------------------
# Frechet distance
# --------------------------------------------------------------------------------------------
def fid_quiet(mu1, s1, mu2, s2):
    buf = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
        warnings.simplefilter("ignore", DeprecationWarning)
        v = calculate_frechet_distance(mu1, s1, mu2, s2)
    return float(v), buf.getvalue().strip()


def fid_eig(mu1, s1, mu2, s2):
    """Independent check: tr sqrtm(S1 S2) = sum sqrt(eig(S1 S2)) (eigenvalues real >= 0)."""
    ev = np.linalg.eigvals(s1 @ s2).real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def frechet_fixture():
    rng = np.random.default_rng(1234)
    dim = 64

    def feats(n, shift, mix_scale):
        a = np.eye(dim) + mix_scale * rng.standard_normal((dim, dim)) / np.sqrt(dim)
        mu = shift + 0.5 * rng.standard_normal(dim)
        return rng.standard_normal((n, dim)) @ a + mu

    out = {}
    fa, fb = feats(200, 0.0, 0.8), feats(180, 0.3, 1.2)
    fc, fd = feats(20, 0.0, 0.8), feats(20, 0.2, 1.0)
    for k, f in (("a", fa), ("b", fb), ("c", fc), ("d", fd)):
        out[f"feats_{k}"] = f
        out[f"mu_{k}"] = np.mean(f, axis=0)
        out[f"sigma_{k}"] = np.cov(f, rowvar=False)
    v, msg = fid_quiet(out["mu_a"], out["sigma_a"], out["mu_b"], out["sigma_b"])
    print(f"fid(a,b) = {v!r}  eig-check {fid_eig(out['mu_a'], out['sigma_a'], out['mu_b'], out['sigma_b'])!r} {msg}")
    out["fid"] = np.array([v])
    v, msg = fid_quiet(out["mu_c"], out["sigma_c"], out["mu_d"], out["sigma_d"])
    print(f"fid(c,d) = {v!r}  eig-check {fid_eig(out['mu_c'], out['sigma_c'], out['mu_d'], out['sigma_d'])!r}"
          f"  eps-branch taken: {bool(msg)} {msg}")
    out["fid_singular"] = np.array([v])
    # the value pytorch-fid's eps branch computes (offset 1e-6*I on both covariances), forced
    eye = np.eye(dim) * 1e-6
    v_eps, _ = fid_quiet(out["mu_c"], out["sigma_c"] + eye, out["mu_d"], out["sigma_d"] + eye)
    print(f"fid(c,d) with +1e-6*I forced = {v_eps!r}")
    out["fid_singular_eps"] = np.array([v_eps])
    return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in out.items()}


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-weights", action="store_true",
                    help="do not write the ~48 MB fp16 weight file (reference.safetensors is still "
                         "computed from the same weights)")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    images = make_images()

    # randn weights (+ fp16 weight file)
    sd = randn_state_dict()
    if not a.skip_weights:
        wpath = f"{OUT}/pt_inception_random.safetensors"
        save_file({k: v.half() for k, v in sd.items()}, wpath)
        back = load_file(wpath)
        assert back.keys() == sd.keys() and all(torch.equal(back[k].float(), sd[k]) for k in sd)
    save_file(run_reference(sd, images, "randn"), f"{OUT}/reference.safetensors")

    # hash weights (no weight file; probes let the Rust generator be checked first)
    hsd = hash_state_dict()
    ref = run_reference(hsd, images, "hash")
    for name in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var", "fc.bias"):
        ref[f"probe.{name}"] = hsd[name].flatten()[:16].clone()
    for k, v in hsd.items():  # exact: all values of a tensor are multiples of one 2^-e
        ref[f"sum.{k}"] = torch.tensor([float(v.double().sum())], dtype=torch.float64)
    save_file(ref, f"{OUT}/reference_hashinit.safetensors")

    save_np(frechet_fixture(), f"{OUT}/frechet.safetensors")

    n_params = sum(v.numel() for v in sd.values())
    print(f"{len(sd)} tensors, {n_params} values")
    for f in sorted(os.listdir(OUT)):
        p = f"{OUT}/{f}"
        print(f"{os.path.getsize(p):>10}  {sha(p)}  {p}")


if __name__ == "__main__":
    main()
