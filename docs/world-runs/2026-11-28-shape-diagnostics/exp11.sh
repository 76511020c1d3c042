#!/bin/bash
# tenth session: the redrawn good samples with the pre-training loss (renders in every batch, beta 1, 8 a step):
# the web-caption model with its own noisy-caption renders (its D_pre), the committed model with the clean renders
B=/work/main/target/release/rlhf-t2i; J=/work/main/target/release/examples/worldjudge
run() { N=$1; M=$2; MAN=$3; L=$4; shift 4
  $B finetune --model $M --manifest $MAN --labels $L --config /tmp/ft/base.json --out $N --device cpu "$@" > $N.log 2>&1
  $B generate --prompts /tmp/p80.jsonl --out $N/gen --model $N/model --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > /dev/null 2>&1
  echo "== $N $*"; $J $N/gen/manifest.jsonl | head -5
}
run /tmp/nz/rr300p1 /tmp/nz/web/model /tmp/nz/rr/manifest.jsonl /tmp/nz/rr/labels-oracle.jsonl --lr 1e-4 --steps 300 --pretrain /tmp/nz/captions.jsonl --beta 1 --pre-batch 8
run /tmp/h3/rr300p1 /work/main/assets/world/sd /tmp/h3/rr/manifest.jsonl /tmp/h3/rr/labels-oracle.jsonl --lr 1e-4 --steps 300 --pretrain /tmp/rq3/world-data/captions.jsonl --beta 1 --pre-batch 8
