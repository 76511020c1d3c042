#!/bin/bash
# tenth session: the web-caption model (misaligned partly by its data) fine-tuned on correct images:
# renders of the 84 training captions (rmatch), and its own good samples redrawn with exact shapes (rr)
cd /tmp/nz
B=/work/main/target/release/rlhf-t2i; J=/work/main/target/release/examples/worldjudge
M=/tmp/nz/web/model
run() { N=$1; MAN=$2; L=$3; shift 3
  $B finetune --model $M --manifest $MAN --labels $L --config /tmp/ft/base.json --out /tmp/nz/$N --device cpu "$@" > /tmp/nz/$N.log 2>&1
  $B generate --prompts /tmp/p80.jsonl --out /tmp/nz/$N/gen --model /tmp/nz/$N/model --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > /dev/null 2>&1
  echo "== $N $*"; $J /tmp/nz/$N/gen/manifest.jsonl | head -5
}
run rmatch300 /tmp/h3/rmatch/manifest.jsonl /tmp/h3/rmatch/labels.jsonl --lr 1e-4 --steps 300
run rr300 /tmp/nz/rr/manifest.jsonl /tmp/nz/rr/labels-oracle.jsonl --lr 1e-4 --steps 300
