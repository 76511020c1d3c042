#!/usr/bin/env bash
# 2026-11-27 (sixth session), run as `bash .gpu/run5.sh 8 256 1e-3 0.1 .gpu/ss` on an H200 (513 s):
# the world UNet with the time embedding as a scale and shift (configs/world/unet.json, then named
# unet-ss.json), trained on the CPU for 70 minutes (4,550 steps of 32; its clip/ and sd/ copied to
# .gpu/ss), goes on here with DDPM-IP 0.1 beside the same CLIP; then the 80 world evaluation
# prompts x 2 with DDPM 50 at guidance 3 and 1. That made the committed assets/world model.
# Next time: copy this to .gpu/, put the CUDA binary in .gpu/rlhf-t2i.xz (../shared/gpu/README.md),
# .gpu/run-on-device.sh and the evaluation prompts (a reproduce run's prompts/eval.jsonl) in
# .gpu/eval-prompts.jsonl, and go on from the
# committed models (FROM defaults to assets/world). Judge here afterwards: examples/worldjudge.rs.
#   run: bash .gpu/run5.sh MINUTES [BATCH] [LR] [IP] [FROM]   (carry [".gpu"])
set -u
G=.gpu
MIN="${1:-8}"; B="${2:-256}"; LR="${3:-1e-3}"; IP="${4:-0.1}"; FROM="${5:-assets/world}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem5.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
el "unpacked"
RUN="bash $G/run-on-device.sh"
D=/tmp/ssgpu; mkdir -p "$D"
timeout $(( ${MIN%.*} * 60 + 75 )) $RUN /tmp/rlhf-t2i world pretrain --out "$D" --images 40000 \
  --continue-from "$FROM" --unet-batch "$B" --unet-lr "$LR" --unet-steps 1000000 \
  --unet-minutes "$MIN" --unet-input-perturbation "$IP" --device cuda > "$D/pretrain.log" 2>&1
echo "exit $?" >> "$D/pretrain.log"
el "trained"
W=""
if [ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ]; then
  for g in 3 1; do
    $RUN /tmp/rlhf-t2i generate --prompts "$G/eval-prompts.jsonl" --out "$D/gen-g$g" --model "$D/sd" \
      --images-per-prompt 2 --scheduler ddpm --steps 50 --guidance $g --batch-size 160 --device cuda >> "$D/pretrain.log" 2>&1
  done
  el "sampled"
  W="sd gen-g3 gen-g1 pretrain.json"
else
  W=$(cd "$D" && ls -d unet-training/checkpoints/step-*/ema.safetensors 2>/dev/null | tail -1)
fi
tar -C "$D" -czf "$OUT/world-ss.tgz" pretrain.log unet-training/metrics.jsonl $W 2>>"$D/pretrain.log"
grep -v "unet step" "$D/pretrain.log" | tail -8; grep "unet step" "$D/pretrain.log" | awk 'NR%5==1' ; grep "unet step" "$D/pretrain.log" | tail -2
el "done"
kill $SMI
ls -la "$OUT"
