#!/usr/bin/env bash
# One prepared GPU run (issue 7 + issue 8): CUDA parity and gradients, three world-UNet
# pre-trainings side by side, then `rlhf-t2i bench` and the PyTorch anchor on the same card.
# Usage there: OUT=... bash .gpu/run.sh [WORLD_MINUTES] [BENCH_BUDGET_S] [ANCHOR_BUDGET_S]
set -u
G=.gpu
MIN="${1:-3}"; BENCH_S="${2:-110}"; ANCHOR_S="${3:-50}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 250 > "$OUT/gpumem.csv" 2>&1 &
SMI=$!
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for b in rlhf-t2i integration; do
  if command -v xz >/dev/null; then xz -dc "$G/$b.xz" > "/tmp/$b"
  else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/$b.xz" > "/tmp/$b"; fi
  chmod +x "/tmp/$b"
done
RUN="bash $G/run-on-device.sh"
el "unpacked"

# 1. World UNet variants, concurrently (small models: the GPU is mostly idle between launches).
for V in A B C; do
  D=/tmp/w$V; mkdir -p "$D"; cp -r "$G"/world-base/. "$D"/
  (
    timeout $(( ${MIN%.*} * 60 + 150 )) $RUN /tmp/rlhf-t2i world pretrain --out "$D" --images 12000 \
      --unet-batch 128 --unet-lr 1e-3 --unet-steps 100000 --unet-minutes "$MIN" \
      --unet-config "$G/unet-$V.json" --device cuda > "$D/pretrain.log" 2>&1
    echo "exit $?" >> "$D/pretrain.log"
    # The finished model, or (cut off) the newest checkpoint's EMA weights.
    W=sd/unet; [ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ] \
      || W=$(cd "$D" && ls -d unet-training/checkpoints/step-*/ema.safetensors 2>/dev/null | tail -1)
    tar -C "$D" -czf "$OUT/world-$V.tgz" pretrain.log unet-training/metrics.jsonl $W \
      $( [ -f "$D/pretrain.json" ] && echo pretrain.json ) 2>>"$D/pretrain.log"
  ) &
done
el "world trainings started"

# 2. Parity and gradients on CUDA (f32 1e-4; bf16 and f16 2e-2), beside the trainings.
export RLHF_T2I_FIXTURES="$PWD/tests/fixtures" RLHF_T2I_TEST_DEVICE=cuda
{
  el "parity f32 + gradients"
  timeout 120 $RUN /tmp/integration parity:: gradients:: --test-threads 1 --nocapture
  for d in bf16 f16; do
    el "parity $d"
    RLHF_T2I_TEST_DTYPE=$d timeout 60 $RUN /tmp/integration parity:: --test-threads 1 --nocapture
  done
} > "$OUT/parity.log" 2>&1
el "parity done"
wait $(jobs -p | grep -v "^$SMI$") 2>/dev/null
for V in A B C; do tail -3 "/tmp/w$V/pretrain.log"; done
el "world trainings done"

# 3. rlhf-t2i bench (full-size SD1.5 / CLIP ViT-L/14, random weights).
timeout $(( BENCH_S + 80 )) $RUN /tmp/rlhf-t2i bench --device cuda --budget-s "$BENCH_S" > "$OUT/bench.log" 2>&1
el "bench done (exit $?)"

# 4. The PyTorch reference on the same card.
timeout $(( ANCHOR_S + 70 )) bash "$G/pytorch-anchor/run.sh" "$G/whl" --budget-s "$ANCHOR_S" --only fwd,sample,train,vae,clip > /dev/null 2>&1
el "anchor done (exit $?)"
kill $SMI
ls -la "$OUT"
