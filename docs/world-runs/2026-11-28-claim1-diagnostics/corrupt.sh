set -e
B=/work/main/target/release/rlhf-t2i; J=/work/main/target/release/examples/worldjudge
S=$(date +%s)
$B finetune --model /work/main/assets/world/sd --manifest /tmp/h3/train/manifest.jsonl --labels /tmp/h3/labels0.jsonl --config /tmp/ft/base.json --out /tmp/nz/web --device cpu --lr 1e-4 --steps 600 --model-batch 1 --pretrain /tmp/nz/captions.jsonl --beta 1 --pre-batch 32 > web.log 2>&1
echo "ft $(( $(date +%s)-S )) s"
$B generate --prompts /tmp/p80.jsonl --out ev-web --model /tmp/nz/web/model --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 64 --device cpu > /dev/null 2>&1
echo "== web x4"; $J ev-web/manifest.jsonl 2>/dev/null | head -5 | tr '\n' ' '; echo
/work/main/target/release/examples/contrastprobe ev-web/manifest.jsonl
echo "total $(( $(date +%s)-S )) s"
