#!/bin/bash
# usage: [CFG=CONFIG] run.sh NAME [finetune flags...] -> finetune the stage-4 model (MODEL) on its test bed labels (DDPM25 g3), eval p80 x NI DDPM25 g3
N=$1; shift
B=/work/main/target/release/rlhf-t2i
rm -rf /tmp/s4/$N
S=$(date +%s)
$B finetune --model ${MODEL:-/tmp/s4/sd} --manifest ${MAN:-/tmp/s4/train/manifest.jsonl} --labels ${L:-/tmp/s4/labels.jsonl} --config ${CFG:-/tmp/ft/base.json} --out /tmp/s4/$N --device cpu "$@" > /tmp/s4/$N.log 2>&1 || { tail -5 /tmp/s4/$N.log; exit 1; }
F=$(date +%s)
$B generate --prompts /tmp/p80.jsonl --out /tmp/s4/$N/gen --model /tmp/s4/$N/model --images-per-prompt ${NI:-4} --scheduler ddpm --steps 25 --guidance ${G:-3} --batch-size 64 --device cpu > /dev/null 2>&1
echo "== $N $* (ft $((F-S))s)"; /work/main/target/release/examples/worldjudge /tmp/s4/$N/gen/manifest.jsonl | head -5 | tr '\n' ' '; echo
/work/main/target/release/examples/contrastprobe /tmp/s4/$N/gen/manifest.jsonl 2>&1 | tail -1
