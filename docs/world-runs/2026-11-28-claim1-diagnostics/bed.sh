#!/bin/bash
set -e
B=/work/main/target/release/rlhf-t2i; J=/work/main/target/release/examples/worldjudge
cd /tmp/h3
S=$(date +%s)
$B generate --prompts train-prompts.jsonl --out train --model /work/main/assets/world/sd --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > gen.log 2>&1
echo "gen $(( $(date +%s)-S )) s"
$J train/manifest.jsonl fb.jsonl | head -6
$B feedback import --manifest train/manifest.jsonl --out labels.jsonl fb.jsonl > imp.log 2>&1
$B generate --prompts /tmp/p80.jsonl --out ev-orig --model /work/main/assets/world/sd --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > /dev/null 2>&1
echo "== orig x4"; $J ev-orig/manifest.jsonl | head -5 | tr '\n' ' '; echo
/work/main/target/release/examples/contrastprobe train/manifest.jsonl ev-orig/manifest.jsonl
./run.sh good300 --lr 1e-4 --steps 300
./run.sh good300p1 --lr 1e-4 --steps 300 --pretrain /tmp/rq3/world-data/captions.jsonl --beta 1 --pre-batch 8
echo "total $(( $(date +%s)-S )) s"
