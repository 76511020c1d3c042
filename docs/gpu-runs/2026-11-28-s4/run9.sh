#!/usr/bin/env bash
# 2026-11-28 (eleventh session), run as `bash .gpu/run9.sh` on an H200 (carry [".gpu"]): claim 1
# with the paper's batch shape on the stage-4 world UNet of run8.sh. The test bed (.gpu/s4bed:
# the 84 training prompts' 960 DDPM-25 g3 samples, 432 judged good by the oracle; 5,000 world
# renders as D_pre) is fine-tuned three ways, 100 updates of 256 samples + 256 renders (beta 1:
# the paper's 512-image half-and-half batch; 100 updates = ~59 passes over the good samples, the
# paper's ~60): F1 every UNet parameter at lr 2e-5, F2 at lr 1e-4, F3 cross-attention only
# (`--trainable attn2`) at lr 1e-4. Each then draws the 80 evaluation prompts x 4 (DDPM 25, g3);
# the oracle judges them on the CPU afterwards.
set -u
G=.gpu; S=$G/s4bed
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem9.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
el "unpacked"
RUN="bash $G/run-on-device.sh"
ft() {
  local name=$1 lmt=$2; shift 2
  timeout "$lmt" $RUN /tmp/rlhf-t2i finetune --model "$S/sd" --manifest "$S/train/manifest.jsonl" --labels "$S/labels.jsonl" \
    --pretrain "$S/dpre/captions.jsonl" --config "$G/ft-paper.json" --out "/tmp/$name" --device cuda "$@" > "$OUT/$name.log" 2>&1
  echo "exit $?" >> "$OUT/$name.log"
  el "$name trained"
  if [ -d "/tmp/$name/model" ]; then
    $RUN /tmp/rlhf-t2i generate --prompts "$G/p80.jsonl" --out "/tmp/$name/gen" --model "/tmp/$name/model" \
      --images-per-prompt 4 --scheduler ddpm --steps 25 --guidance 3 --batch-size 160 --device cuda >> "$OUT/$name.log" 2>&1
    (cd /tmp/$name && tar -czf "$OUT/$name-gen.tgz" gen)
    el "$name sampled"
  fi
}
ft F1 85 --lr 2e-5
ft F2 85 --lr 1e-4
ft F3 80 --lr 1e-4 --trainable attn2
el "done"
kill $SMI
for f in F1 F2 F3; do grep -v "^ *[0-9]*: \|^ *at " "$OUT/$f.log" | tail -6; done
ls -la "$OUT"
