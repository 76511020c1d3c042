#!/bin/bash
# usage: run.sh NAME [finetune flags...] -> finetune on h3 labels (DDPM25 g3), eval p80 x NI DDPM25 g3
N=$1; shift
B=/work/main/target/release/rlhf-t2i
rm -rf /tmp/h3/$N
S=$(date +%s)
$B finetune --model /work/main/assets/world/sd --manifest ${MAN:-/tmp/h3/train/manifest.jsonl} --labels ${L:-/tmp/h3/labels.jsonl} --config /tmp/ft/base.json --out /tmp/h3/$N --device cpu "$@" > /tmp/h3/$N.log 2>&1 || { tail -5 /tmp/h3/$N.log; exit 1; }
F=$(date +%s)
$B generate --prompts /tmp/p80.jsonl --out /tmp/h3/$N/gen --model /tmp/h3/$N/model --images-per-prompt ${NI:-4} --scheduler ddpm --steps 25 --guidance ${G:-3} --batch-size 64 --device cpu > /dev/null 2>&1
echo "== $N $* (ft $((F-S))s)"; /work/main/target/release/examples/worldjudge /tmp/h3/$N/gen/manifest.jsonl | head -5 | tr '\n' ' '; echo
/work/main/target/release/examples/contrastprobe /tmp/h3/$N/gen/manifest.jsonl 2>&1 | tail -1
