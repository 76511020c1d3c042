#!/usr/bin/env python3
"""Build assets/clip-tokenizer/tokenizer.json from open_clip's BPE vocabulary and check it.

The CLIP BPE vocabulary (`bpe_simple_vocab_16e6.txt.gz`) ships inside the open_clip_torch wheel
(MIT license). This script rebuilds exactly the vocabulary open_clip's `SimpleTokenizer` builds:

    bytes_to_unicode() chars (256), then each char + '</w>' (256), then the joined merge pairs
    (merges = lines[1 : 49152 - 256 - 2 + 1], i.e. 48894 merges), then
    '<|startoftext|>' (49406) and '<|endoftext|>' (49407)   -> 49408 tokens.

It writes vocab.json + merges.txt to a temporary directory, loads them with
`transformers.CLIPTokenizerFast` (model_max_length 77, pad token '<|endoftext|>'), saves the
resulting `tokenizer.json` to assets/clip-tokenizer/, and then compares the fast tokenizer with
`open_clip.tokenizer.SimpleTokenizer` on a few hundred prompts. It also writes
tests/fixtures/tokenizer_cases.jsonl (open_clip's ids, sot..eot, unpadded) for the Rust tests.

Regenerate with:

    pip download --no-deps open_clip_torch==3.3.0 -d /tmp/oc
    pip install -r scripts/requirements.txt
    python scripts/make_tokenizer.py --wheel /tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl

(--wheel may be omitted when open_clip_torch is installed; its bundled gz file is used then.)
"""
import argparse
import gzip
import io
import json
import os
import random
import shutil
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "assets", "clip-tokenizer")
CASES = os.path.join(ROOT, "tests", "fixtures", "tokenizer_cases.jsonl")
PAPER = os.path.join(ROOT, "..", "shared", "paper", "lee2023-aligning-t2i-human-feedback.txt")
if not os.path.exists(PAPER):
    PAPER = "/work/shared/paper/lee2023-aligning-t2i-human-feedback.txt"

SOT, EOT = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode():
    # identical to open_clip.tokenizer.bytes_to_unicode (and OpenAI CLIP's)
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def read_gz(args):
    if args.wheel:
        with zipfile.ZipFile(args.wheel) as z:
            data = z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")
            lic = None
            for name in z.namelist():
                if name.endswith("licenses/LICENSE") or name.endswith(".dist-info/LICENSE"):
                    lic = z.read(name).decode("utf-8")
        return gzip.decompress(data).decode("utf-8"), lic
    import open_clip.tokenizer as oct_
    with gzip.open(oct_.default_bpe()) as f:
        return f.read().decode("utf-8"), None


def build_vocab(text):
    lines = text.split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    assert len(merges) == 48894 and all(len(m) == 2 for m in merges)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    for m in merges:
        vocab.append("".join(m))
    vocab.extend([SOT, EOT])
    encoder = dict(zip(vocab, range(len(vocab))))
    assert len(encoder) == len(vocab) == 49408, (len(encoder), len(vocab))
    return encoder, merges


def prompts():
    colors = ["red", "yellow", "green", "blue", "black", "pink", "purple", "white", "brown"]
    counts = ["One", "Two", "Three", "Four", "Five", "Six"]
    bgs = ["in the forest", "in the city", "on the moon", "in the field", "in the sea",
           "on the table", "in the desert", "in San Francisco"]
    objs = ["dog", "cat", "lion", "orange", "vase", "cup", "apple", "chair", "bird", "cake",
            "bicycle", "tree", "donut", "box", "plate", "clock", "backpack", "car", "airplane",
            "bear", "horse", "tiger", "rabbit", "rose", "wolf"]
    plural = {"box": "boxes", "wolf": "wolves"}

    def pl(o):
        return plural.get(o, o + "s")

    def art(o):
        return "An" if o[0] in "aeiou" else "A"

    hand = [
        "Two blue dogs in the forest.", "A green colored dog.", "Five white dogs in the city",
        "A dog on the moon", "One dog", "Two dogs", "A green colored dog", "A dog in the forest",
        "Two brown bears.", "Two red roses.", "",
        # punctuation, digits, apostrophes, capitals, double spaces, unicode
        "A dog's toy!", "The cat's in the hat, isn't it?", "3 dogs and 12 cats, 2024.",
        "A RED  colored   DOG.", "  leading and trailing spaces  ", "tab\tseparated\nnewline",
        "We'll see; they've gone, I'm here, you'd know, it's fine.",
        "photo of a dog -- 4k, ultra-detailed (masterpiece) [best quality]",
        "an astronaut riding a horse on mars, artstation, 8k",
        "A café in Paris, naïve art", "Hello, World!!! ... ???", "e-mail: test@example.com",
        "100% pure #hashtag & more", "x=1+2*3/4", "\"quoted\" 'single' `back`",
        "A photo of San Francisco at night.", "ONE DOG", "one dog", "One  dog", "A dog.A cat.",
        "supercalifragilisticexpialidocious", "Two dogs, three cats; four birds: five cars.",
    ]
    table4 = []
    with open(PAPER, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for line in lines[198:224]:
        if "colored" not in line and "Two" not in line and "Three" not in line \
                and " on the " not in line and " in the " not in line:
            continue
        line = line.replace("Unseen |", "").replace("Seen |", "")
        for part in line.split(";"):
            p = part.strip().strip("|").strip()
            if p.endswith(".") and len(p) > 3:
                table4.append(p)

    gen = []
    for c in colors:
        for o in objs:
            gen.append(f"A {c} colored {o}.")
    for i, n in enumerate(counts):
        for o in objs:
            gen.append(f"{n} {o}." if i == 0 else f"{n} {pl(o)}.")
    for b in bgs:
        for o in objs:
            gen.append(f"{art(o)} {o} {b}.")
    rng = random.Random(0)
    for _ in range(150):
        n = rng.randrange(6)
        c, b, o = rng.choice(colors), rng.choice(bgs), rng.choice(objs)
        noun = o if n == 0 else pl(o)
        gen.append(f"{counts[n]} {c} {noun} {b}.")
    return hand, table4, gen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", default=None, help="open_clip_torch wheel holding the BPE gz")
    args = ap.parse_args()

    text, license_text = read_gz(args)
    encoder, merges = build_vocab(text)

    from transformers import CLIPTokenizerFast
    tmp = tempfile.mkdtemp()
    try:
        vf, mf = os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt")
        with open(vf, "w", encoding="utf-8") as f:
            json.dump(encoder, f, ensure_ascii=False)
        with open(mf, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for a, b in merges:
                f.write(f"{a} {b}\n")
        kw = dict(model_max_length=77, unk_token=EOT, bos_token=SOT, eos_token=EOT,
                  pad_token=EOT)
        # transformers 5.x: loading the directory reads vocab.json + merges.txt (the v4
        # `CLIPTokenizerFast(vocab_file, merges_file)` keywords are silently ignored in v5).
        tok = CLIPTokenizerFast.from_pretrained(tmp, **kw)
        assert len(tok) == 49408, f"tokenizer has {len(tok)} tokens; vocab.json not loaded"
        # transformers' CLIPTokenizer keeps a ByteLevel decoder and patches `decode` in Python to
        # turn '</w>' into spaces; write the decoder that openai/clip-vit-* tokenizer.json files
        # carry instead, so plain `tokenizers` (Rust too) decodes to text. Encoding is unaffected.
        from tokenizers import decoders
        tok.backend_tokenizer.decoder = decoders.BPEDecoder(suffix="</w>")
        save = os.path.join(tmp, "saved")
        tok.save_pretrained(save)
        os.makedirs(OUT_DIR, exist_ok=True)
        shutil.copy(os.path.join(save, "tokenizer.json"), os.path.join(OUT_DIR, "tokenizer.json"))
    finally:
        shutil.rmtree(tmp)

    # --- vocabulary check on the written tokenizer.json ---
    from tokenizers import Tokenizer
    tj = json.load(open(os.path.join(OUT_DIR, "tokenizer.json"), encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    assert vocab == encoder, "tokenizer.json vocab differs from open_clip's"
    assert len(vocab) == 49408 and vocab[SOT] == 49406 and vocab[EOT] == 49407
    assert len(tj["model"]["merges"]) == len(merges)
    rt = Tokenizer.from_file(os.path.join(OUT_DIR, "tokenizer.json"))
    assert rt.get_vocab_size() == 49408
    assert rt.decode(rt.encode("A red colored dog.").ids) == "a red colored dog ."
    print(f"vocab ok: {len(vocab)} tokens, {SOT}={vocab[SOT]}, {EOT}={vocab[EOT]}, "
          f"{len(merges)} merges")

    if license_text:
        with open(os.path.join(OUT_DIR, "LICENSE"), "w", encoding="utf-8") as f:
            f.write("The CLIP BPE vocabulary in tokenizer.json comes from open_clip\n"
                    "(open_clip_torch 3.3.0, file open_clip/bpe_simple_vocab_16e6.txt.gz),\n"
                    "which distributes it under the following license. OpenAI's CLIP repository,\n"
                    "where the vocabulary originates, is likewise MIT-licensed\n"
                    "(Copyright (c) 2021 OpenAI).\n\n")
            f.write(license_text)

    # --- agreement with open_clip's SimpleTokenizer ---
    from open_clip.tokenizer import SimpleTokenizer
    st = SimpleTokenizer()
    assert st.sot_token_id == 49406 and st.eot_token_id == 49407
    hand, table4, gen = prompts()
    allp = list(dict.fromkeys(hand + table4 + gen))
    agree, mism = 0, []
    cases = []
    for p in allp:
        ref = [st.sot_token_id] + st.encode(p) + [st.eot_token_id]
        got = rt.encode(p).ids
        if ref == got:
            agree += 1
        else:
            mism.append((p, ref, got))
        cases.append({"text": p, "ids": ref})
    # also padded / truncated behaviour of the transformers tokenizer (max_length padding)
    print(f"tokenizer agreement: {agree}/{len(allp)} prompts "
          f"({len(hand)} hand-written, {len(table4)} from Table 4, {len(gen)} generated)")
    for p, ref, got in mism:
        print("MISMATCH:", repr(p), "\n  open_clip:", ref, "\n  fast     :", got)

    # fixture: all hand-written and Table 4 prompts, plus a deterministic sample of generated ones
    keep = set(hand) | set(table4)
    rng = random.Random(1)
    gen_unique = [p for p in dict.fromkeys(gen) if p not in keep]
    sample = set(rng.sample(gen_unique, max(0, 300 - len(keep))))
    os.makedirs(os.path.dirname(CASES), exist_ok=True)
    n = 0
    with open(CASES, "w", encoding="utf-8") as f:
        for c in cases:
            if c["text"] in keep or c["text"] in sample:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
                n += 1
    print(f"wrote {CASES} ({n} cases)")
    if mism:
        sys.exit(1)


if __name__ == "__main__":
    main()
