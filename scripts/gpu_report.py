#!/usr/bin/env python3
"""Line up one GPU run's `rlhf-t2i bench` output with the PyTorch anchor of the same run.

    python3 scripts/gpu_report.py RUN_DIR

RUN_DIR holds what `.gpu/run.sh` left under $OUT: bench.log (one JSON line per measurement),
pytorch_anchor.json and gpumem.csv (nvidia-smi's memory.used every 250 ms). Prints a markdown
table: our median, PyTorch's, the time ratio (ours / PyTorch: <= 1.0 meets the target), and
peak device memory. Ours is read from nvidia-smi over each measurement's start..end window (the
whole process: weights, cached blocks and all); PyTorch's is its own peak_mem_gib.
Standard library only.
"""
import datetime
import json
import sys
from pathlib import Path


def bench_records(path):
    out = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def memory_log(path):
    samples = []
    if not Path(path).exists():
        return samples
    for line in Path(path).read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[1].endswith("MiB"):
            continue
        try:
            t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f")
        except ValueError:
            continue
        t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
        samples.append((t, float(parts[1].split()[0]) / 1024.0))
    return samples


def peak_gib(samples, start, end):
    inside = [m for t, m in samples if start - 0.3 <= t <= end + 0.3]
    return max(inside) if inside else None


def main():
    run = Path(sys.argv[1])
    ours = bench_records(run / "bench.log")
    anchor = {}
    if (run / "pytorch_anchor.json").exists():
        for r in json.loads((run / "pytorch_anchor.json").read_text()).get("results", []):
            anchor[r["name"]] = r
    mem = memory_log(run / "gpumem.csv")
    print("| measurement | rlhf-t2i ms | PyTorch ms | time ratio (ours/PyTorch) | rlhf-t2i peak GiB (nvidia-smi) | PyTorch peak GiB |")
    print("|---|---|---|---|---|---|")
    for r in ours:
        name = r.get("name", "?")
        a = anchor.get(name, {})
        if "error" in r or "skipped" in r:
            why = (r.get("error") or r.get("skipped") or "").splitlines()[0][:90]
            print(f"| {name} | {'error' if 'error' in r else 'skipped'}: {why} | {a.get('median_ms', '-')} | - | - | {a.get('peak_mem_gib', '-')} |")
            continue
        ms = r["median_ms"]
        ratio = f"{ms / a['median_ms']:.2f}" if a.get("median_ms") else "-"
        peak = None
        if "start_unix_s" in r:
            peak = peak_gib(mem, r["start_unix_s"], r["end_unix_s"])
        peak_s = f"{peak:.1f}" if peak is not None else "-"
        print(f"| {name} | {ms:.1f} | {a.get('median_ms', '-')} | {ratio} | {peak_s} | {a.get('peak_mem_gib', '-')} |")


if __name__ == "__main__":
    main()
