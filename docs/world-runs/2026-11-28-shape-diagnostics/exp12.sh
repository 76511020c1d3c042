#!/bin/bash
# tenth session: five times longer: the web-caption model on its redrawn good samples + its noisy renders (beta 1, 8 a step), 1,500 steps
B=/work/main/target/release/rlhf-t2i; J=/work/main/target/release/examples/worldjudge
N=/tmp/nz/rr1500p1; S=$(date +%s)
$B finetune --model /tmp/nz/web/model --manifest /tmp/nz/rr/manifest.jsonl --labels /tmp/nz/rr/labels-oracle.jsonl --config /tmp/ft/base.json --out $N --device cpu --lr 1e-4 --steps 1500 --pretrain /tmp/nz/captions.jsonl --beta 1 --pre-batch 8 > $N.log 2>&1
F=$(date +%s)
$B generate --prompts /tmp/p80.jsonl --out $N/gen --model $N/model --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > /dev/null 2>&1
echo "== rr1500p1 (ft $((F-S)) s)"; $J $N/gen/manifest.jsonl | head -5
