set -e
B=/work/main/target/release/rlhf-t2i; J=/work/main/target/release/examples/worldjudge
M=/tmp/nz/web/model
S=$(date +%s)
$B generate --prompts /tmp/h3/train-prompts.jsonl --out train --model $M --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > gen.log 2>&1
echo "gen $(( $(date +%s)-S )) s"
$J train/manifest.jsonl fb.jsonl | head -6
$B feedback import --manifest train/manifest.jsonl --out labels.jsonl fb.jsonl > imp.log 2>&1
run() { N=$1; shift
  $B finetune --model $M --manifest /tmp/nz/train/manifest.jsonl --labels /tmp/nz/labels.jsonl --config /tmp/ft/base.json --out /tmp/nz/$N --device cpu "$@" > /tmp/nz/$N.log 2>&1
  $B generate --prompts /tmp/p80.jsonl --out /tmp/nz/$N/gen --model /tmp/nz/$N/model --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > /dev/null 2>&1
  echo "== $N $*"; $J /tmp/nz/$N/gen/manifest.jsonl | head -5 | tr '\n' ' '; echo
  /work/main/target/release/examples/contrastprobe /tmp/nz/$N/gen/manifest.jsonl | tail -1
}
run good300 --lr 1e-4 --steps 300
run good300p1 --lr 1e-4 --steps 300 --pretrain /tmp/nz/captions.jsonl --beta 1 --pre-batch 8
echo "total $(( $(date +%s)-S )) s"
