#!/bin/bash
# The test bed on the stage-4 model (as run, 2026-11-28 eleventh session). Its images were drawn on
# the H200 by docs/gpu-runs/2026-11-28-s4/run8.sh (`generate` with the same prompts, sampler and
# seeds as the ninth session's bed.sh: the 84 training prompts' 960 images and the 80 evaluation
# prompts x 4, DDPM 25 at guidance 3) into /tmp/s4/train and /tmp/s4/ev-orig; here they are judged
# and labeled on the CPU.
set -e
B=/work/main/target/release/rlhf-t2i; E=/work/main/target/release/examples
cd /tmp/s4
$E/worldjudge train/manifest.jsonl fb.jsonl | head -6
$B feedback import --manifest train/manifest.jsonl --out labels.jsonl fb.jsonl > imp.log 2>&1
$E/worldjudge ev-orig/manifest.jsonl | head -6
$E/shapeprobe ev-orig/manifest.jsonl | tail -6
$E/shapeprobe train/manifest.jsonl labels.jsonl | tail -1
