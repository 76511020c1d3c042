#!/usr/bin/env bash
# 2026-11-27 (eighth session), run as `bash .gpu/run6.sh 7 5e-4 70` on an H200 (464 s; carry [".gpu"]):
# the committed world UNet (assets/world: 70 CPU minutes + 8.5 H200 minutes) trains on for MIN
# more minutes at batch 256 (a second warm-up + cosine cycle peaking at LR, DDPM-IP 0.1) beside
# the same CLIP; then the 80 world evaluation prompts x 2 with the samplers the docs compare
# (DDPM 50 g3 and g1, DDPM 25 g1, DDIM 10 g5); then, for its time on a GPU, `world reproduce
# --quick` on the new model under a QUICK_S-second limit. Judge the samples here afterwards:
# examples/worldjudge.rs. Its output became assets/world (stage 3 in its pretrain.json). The
# reproduce run failed at train-reward (a CUDA matmul on a non-contiguous weight slice, fixed in
# src/reward/model.rs); run-reproduce.sh then ran it with the fixed binary.
#   run: bash .gpu/run6.sh MINUTES [LR] [QUICK_S]
set -u
G=.gpu
MIN="${1:-7}"; LR="${2:-5e-4}"; QUICK_S="${3:-80}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem6.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
el "unpacked"
RUN="bash $G/run-on-device.sh"
D=/tmp/ss3; mkdir -p "$D"
timeout $(( ${MIN%.*} * 60 + 75 )) $RUN /tmp/rlhf-t2i world pretrain --out "$D" --images 40000 \
  --continue-from assets/world --unet-batch 256 --unet-lr "$LR" --unet-steps 1000000 \
  --unet-minutes "$MIN" --unet-input-perturbation 0.1 --device cuda > "$D/pretrain.log" 2>&1
echo "exit $?" >> "$D/pretrain.log"
el "trained"
if [ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ]; then
  for s in "ddpm 50 3" "ddpm 50 1" "ddpm 25 1" "ddim 10 5"; do
    set -- $s
    $RUN /tmp/rlhf-t2i generate --prompts "$G/eval-prompts.jsonl" --out "$D/gen-$1$2-g$3" --model "$D/sd" \
      --images-per-prompt 2 --scheduler $1 --steps $2 --guidance $3 --batch-size 160 --device cuda >> "$D/pretrain.log" 2>&1
  done
  el "sampled"
  # (As run, `tar -C "$D" ... gen-*` expanded gen-* in the wrong folder; the samples came back
  # in a second call. Fixed here.)
  (cd "$D" && tar -czf "$OUT/world-ss3.tgz" pretrain.log pretrain.json unet-training/metrics.jsonl sd clip gen-*) 2>>"$D/pretrain.log"
  el "model packed"
  timeout "$QUICK_S" $RUN /tmp/rlhf-t2i world reproduce --quick --models "$D" --out /tmp/rq --device cuda > "$OUT/reproduce-quick.log" 2>&1
  echo "exit $? after $(( $(date +%s) - T0 )) s" >> "$OUT/reproduce-quick.log"
  cp /tmp/rq/report.md "$OUT/reproduce-quick-report.md" 2>/dev/null
else
  W=$(cd "$D" && ls -d unet-training/checkpoints/step-*/ema.safetensors 2>/dev/null | tail -1)
  tar -C "$D" -czf "$OUT/world-ss3.tgz" pretrain.log unet-training/metrics.jsonl $W
fi
grep -v "unet step" "$D/pretrain.log" | tail -10; grep "unet step" "$D/pretrain.log" | awk 'NR%5==1'; grep "unet step" "$D/pretrain.log" | tail -2
tail -5 "$OUT/reproduce-quick.log" 2>/dev/null
el "done"
kill $SMI
ls -la "$OUT"
