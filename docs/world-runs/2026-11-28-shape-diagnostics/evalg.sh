#!/bin/bash
# usage: evalg.sh NAME MODEL_DIR G -> eval p80 x4 DDPM25 at guidance G into /tmp/h3/NAME-gG
N=$1; M=$2; G=$3; O=/tmp/h3/$N-g$G
B=/work/main/target/release/rlhf-t2i
rm -rf $O
$B generate --prompts /tmp/p80.jsonl --out $O --model $M --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance $G --batch-size 64 --device cpu > /dev/null 2>&1
echo "== $N g$G"; /work/main/target/release/examples/worldjudge $O/manifest.jsonl | head -5
/work/main/target/release/examples/contrastprobe $O/manifest.jsonl | tail -1
