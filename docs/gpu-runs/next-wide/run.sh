#!/usr/bin/env bash
# The next GPU run (prepared 2026-11-26, fourth session; not run yet; copy to .gpu/ to run): the 64-wide world UNet
# (configs/world/unet-wide.json) from scratch beside the committed CLIP, alone on the GPU, then the
# 80 world evaluation prompts x 2 images with DDPM 50 steps, guidance 3, then the paper's experiment
# on the new model (`world reproduce`, DDPM 50 steps at guidance 3, at most REPRO_S seconds; its
# stages resume, so a cut run goes on here on the CPU from the unpacked folder). Needs a CUDA binary
# built from a commit with `world reproduce --scheduler` (2026-11-27, second session) in
# .gpu/rlhf-t2i.xz. Judge here afterwards: worldjudge gen/manifest.jsonl; strengthprobe sd 64 3.
#   run: bash .gpu/run4.sh MINUTES [BATCH] [LR] [SNR_GAMMA] [REPRO_S=180] [UNET_CONFIG]   (carry [".gpu"])
# UNET_CONFIG defaults to configs/world/unet-wide.json; configs/world/unet-ss.json (the time embedding
# as a scale and shift, 2026-11-27 fifth session) needs a binary built from that session or later.
set -u
G=.gpu
MIN="${1:-8}"; B="${2:-256}"; LR="${3:-1.5e-3}"; SNR="${4:-}"; REPRO_S="${5:-180}"
UNET="${6:-configs/world/unet-wide.json}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem4.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
RUN="bash $G/run-on-device.sh"
D=/tmp/wide; mkdir -p "$D"
EXTRA=(); [ -n "$SNR" ] && EXTRA=(--unet-snr-gamma "$SNR")
timeout $(( ${MIN%.*} * 60 + 120 )) $RUN /tmp/rlhf-t2i world pretrain --out "$D" --images 20000 \
  --continue-from assets/world --unet-config "$UNET" \
  --unet-batch "$B" --unet-lr "$LR" --unet-steps 1000000 --unet-minutes "$MIN" "${EXTRA[@]}" \
  --device cuda > "$D/pretrain.log" 2>&1
echo "exit $?" >> "$D/pretrain.log"
el "trained"
W=""
if [ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ]; then
  $RUN /tmp/rlhf-t2i generate --prompts "$G/eval-prompts.jsonl" --out "$D/gen" --model "$D/sd" \
    --images-per-prompt 2 --scheduler ddpm --steps 50 --guidance 3 --batch-size 160 --device cuda >> "$D/pretrain.log" 2>&1
  el "sampled"
  timeout "$REPRO_S" $RUN /tmp/rlhf-t2i world reproduce --models "$D" --out "$D/repro" --device cuda \
    --scheduler ddpm --steps 50 --guidance 3 > "$D/reproduce.log" 2>&1
  echo "exit $?" >> "$D/reproduce.log"
  tail -30 "$D/reproduce.log"
  W="sd gen pretrain.json reproduce.log repro"
else
  W=$(cd "$D" && ls -d unet-training/checkpoints/step-*/ema.safetensors 2>/dev/null | tail -1)
fi
tar -C "$D" -czf "$OUT/world-wide.tgz" pretrain.log unet-training/metrics.jsonl $W 2>>"$D/pretrain.log"
grep "unet step" "$D/pretrain.log" | tail -3; tail -3 "$D/pretrain.log"
el "done"
kill $SMI
ls -la "$OUT"
