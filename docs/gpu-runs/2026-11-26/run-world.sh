#!/usr/bin/env bash
# Second GPU run: the world UNet pre-training alone (variants A and C, batch 128, side by side).
set -u
G=.gpu
MIN="${1:-6.5}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem2.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
RUN="bash $G/run-on-device.sh"
PIDS=()
for V in A C; do
  D=/tmp/w$V; mkdir -p "$D"; cp -r "$G"/world-base/. "$D"/
  (
    timeout $(( ${MIN%.*} * 60 + 140 )) $RUN /tmp/rlhf-t2i world pretrain --out "$D" --images 12000 \
      --unet-batch 128 --unet-lr 1e-3 --unet-steps 100000 --unet-minutes "$MIN" \
      --unet-config "$G/unet-$V.json" --device cuda > "$D/pretrain.log" 2>&1
    echo "exit $?" >> "$D/pretrain.log"
    W=sd/unet; [ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ] \
      || W=$(cd "$D" && ls -d unet-training/checkpoints/step-*/ema.safetensors 2>/dev/null | tail -1)
    tar -C "$D" -czf "$OUT/world-$V.tgz" pretrain.log unet-training/metrics.jsonl $W \
      $( [ -f "$D/pretrain.json" ] && echo pretrain.json ) 2>>"$D/pretrain.log"
  ) &
  PIDS+=($!)
done
el "started"
wait "${PIDS[@]}"
for V in A C; do grep -v "^ *[0-9]*: \|^  *at " "/tmp/w$V/pretrain.log" | grep -v "unet step" | tail -6; done
el "done"
kill $SMI
ls -la "$OUT"
