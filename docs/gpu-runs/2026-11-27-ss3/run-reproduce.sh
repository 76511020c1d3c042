#!/usr/bin/env bash
# 2026-11-27 (eighth session), run as `bash .gpu/run7.sh 130 310` on an H200 (270 s; carry [".gpu"]): the whole
# `world reproduce` on a GPU, first --quick (under QUICK_S seconds), then the full run in what is
# left of TOTAL_S, on the world models of run6.sh (.gpu/ss3: sd/, clip/, pretrain.json).
set -u
G=.gpu
QUICK_S="${1:-120}"; TOTAL_S="${2:-300}"
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader -lms 1000 > "$OUT/gpumem7.csv" 2>&1 &
SMI=$!
if command -v xz >/dev/null; then xz -dc "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i
else python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$G/rlhf-t2i.xz" > /tmp/rlhf-t2i; fi
chmod +x /tmp/rlhf-t2i
el "unpacked"
RUN="bash $G/run-on-device.sh"
timeout "$QUICK_S" $RUN /tmp/rlhf-t2i world reproduce --quick --models "$G/ss3" --out /tmp/rq --device cuda > "$OUT/reproduce-quick.log" 2>&1
echo "exit $? after $(( $(date +%s) - T0 )) s" >> "$OUT/reproduce-quick.log"
cp /tmp/rq/report.md "$OUT/reproduce-quick-report.md" 2>/dev/null
el "quick done"
LEFT=$(( TOTAL_S - ($(date +%s) - T0) - 10 ))
if [ "$LEFT" -gt 30 ]; then
  timeout "$LEFT" $RUN /tmp/rlhf-t2i world reproduce --models "$G/ss3" --out /tmp/rf --device cuda > "$OUT/reproduce-full.log" 2>&1
  echo "exit $? after $(( $(date +%s) - T0 )) s" >> "$OUT/reproduce-full.log"
  cp /tmp/rf/report.md "$OUT/reproduce-full-report.md" 2>/dev/null
fi
el "full done"
kill $SMI
grep -v "^ *[0-9]*: \|^ *at " "$OUT/reproduce-quick.log" | tail -25
tail -25 "$OUT/reproduce-full.log" 2>/dev/null
ls -la "$OUT"
