#!/usr/bin/env bash
# The pixel-space world UNet (configs/world/unet.json) on the GPU, then the 80 world evaluation
# prompts x 2 images (reproduce's sampler: DDIM 10, g 5). Two calls:
#  1. `bash run.sh 6.5` with `for V in "P1 128 1e-3" "P2 256 1.5e-3"` (two runs side by side) and
#     a pretrain timeout of $(( ${MIN%.*} * 60 + 100 )) s; epsilon prediction;
#  2. `bash run.sh 4.8` as written here (P3 alone), after configs/world/scheduler.json switched to
#     v-prediction (the binary was rebuilt).
set -u
G=.gpu
MIN="${1:-7}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem3.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
RUN="bash $G/run-on-device.sh"
PIDS=()
for V in "P3 256 1.5e-3"; do
  set -- $V; N=$1; B=$2; LR=$3
  D=/tmp/w$N; mkdir -p "$D"; cp -r "$G"/world-base-pixel/. "$D"/
  (
    timeout 330 $RUN /tmp/rlhf-t2i world pretrain --out "$D" --images 20000 \
      --unet-batch "$B" --unet-lr "$LR" --unet-steps 100000 --unet-minutes "$MIN" \
      --device cuda > "$D/pretrain.log" 2>&1
    echo "exit $?" >> "$D/pretrain.log"
    if [ -f "$D/sd/unet/diffusion_pytorch_model.safetensors" ]; then
      $RUN /tmp/rlhf-t2i generate --prompts "$G/eval-prompts.jsonl" --out "$D/gen" --model "$D/sd" \
        --images-per-prompt 2 --steps 10 --guidance 5 --batch-size 160 --device cuda >> "$D/pretrain.log" 2>&1
      W="sd gen"
    else
      W=$(cd "$D" && ls -d unet-training/checkpoints/step-*/ema.safetensors 2>/dev/null | tail -1)
    fi
    tar -C "$D" -czf "$OUT/world-$N.tgz" pretrain.log unet-training/metrics.jsonl $W \
      $( [ -f "$D/pretrain.json" ] && echo pretrain.json ) 2>>"$D/pretrain.log"
  ) &
  PIDS+=($!)
done
el "started"
wait "${PIDS[@]}"
for N in P3; do grep -v "^ *[0-9]*: \|^  *at " "/tmp/w$N/pretrain.log" | grep -v "unet step" | tail -4; grep "unet step" "/tmp/w$N/pretrain.log" | tail -2; done
el "done"
kill $SMI
ls -la "$OUT"
