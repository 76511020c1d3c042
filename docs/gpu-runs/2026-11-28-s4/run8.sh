#!/usr/bin/env bash
# 2026-11-28 (eleventh session), run as `bash .gpu/run8.sh 7.8 5e-4 512 4` on an H200 (carry [".gpu"]):
# stage 4 of the world UNet: the committed assets/world (stage 3) trains on for MIN minutes at
# batch BATCH (a third warm-up + cosine cycle peaking at LR, DDPM-IP 0.1) on 60,000 fresh renders
# (seed SEED; stages 2 and 3 saw the same 40,000 of seed 0), beside the same CLIP. Then, with the
# new model: the 80 world evaluation prompts x 2 with DDPM 50 at guidance 3 (the docs' table), and
# the claim-1 test bed's images with DDPM 25 at guidance 3 (the 84 training prompts, 960 images;
# the 80 evaluation prompts x 4). Judging, labels and fine-tuning then run on the CPU.
#   run: bash .gpu/run8.sh MINUTES [LR] [BATCH] [SEED]
set -u
G=.gpu
MIN="${1:-7.8}"; LR="${2:-5e-4}"; BATCH="${3:-512}"; SEED="${4:-4}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem8.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
el "unpacked"
RUN="bash $G/run-on-device.sh"
D=/tmp/s4; mkdir -p "$D"
timeout 560 $RUN /tmp/rlhf-t2i world pretrain --out "$D" --images 60000 --seed "$SEED" \
  --continue-from assets/world --unet-batch "$BATCH" --unet-lr "$LR" --unet-steps 1000000 \
  --unet-minutes "$MIN" --unet-input-perturbation 0.1 --device cuda > "$D/pretrain.log" 2>&1
echo "exit $?" >> "$D/pretrain.log"
el "trained"
if [ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ]; then
  (cd "$D" && tar -czf "$OUT/world-s4.tgz" pretrain.log pretrain.json unet-training/metrics.jsonl sd clip)
  el "model packed"
  $RUN /tmp/rlhf-t2i generate --prompts "$G/p80.jsonl" --out "$D/gen-ddpm50-g3" --model "$D/sd" \
    --images-per-prompt 2 --scheduler ddpm --steps 50 --guidance 3 --batch-size 160 --device cuda >> "$D/gen.log" 2>&1
  $RUN /tmp/rlhf-t2i generate --prompts "$G/p80.jsonl" --out "$D/ev-orig" --model "$D/sd" \
    --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 160 --device cuda >> "$D/gen.log" 2>&1
  $RUN /tmp/rlhf-t2i generate --prompts "$G/train-prompts.jsonl" --out "$D/train" --model "$D/sd" \
    --scheduler ddpm --steps 25 --guidance 3 --batch-size 160 --device cuda >> "$D/gen.log" 2>&1
  el "sampled"
  (cd "$D" && tar -czf "$OUT/gen-s4.tgz" gen.log gen-ddpm50-g3 ev-orig train)
else
  W=$(cd "$D" && ls -d unet-training/checkpoints/step-*/ema.safetensors 2>/dev/null | tail -1)
  tar -C "$D" -czf "$OUT/world-s4.tgz" pretrain.log unet-training/metrics.jsonl $W
fi
grep -v "unet step" "$D/pretrain.log" | tail -8; grep "unet step" "$D/pretrain.log" | awk 'NR%5==1'; grep "unet step" "$D/pretrain.log" | tail -2
grep "generated" "$D/gen.log"
el "done"
kill $SMI
ls -la "$OUT"
