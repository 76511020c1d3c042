#!/bin/bash
# usage: sweep.sh NAME MODEL gen-flags...  -> gen p80 x NI, judge, contrast
N=$1; M=$2; shift 2
B=/work/main/target/release/rlhf-t2i
rm -rf /tmp/sw/$N
S=$(date +%s)
$B generate --prompts /tmp/p80.jsonl --out /tmp/sw/$N --model $M --images-per-prompt ${NI:-2} --batch-size 64 --device cpu "$@" > /tmp/sw/$N.log 2>&1 || { tail -3 /tmp/sw/$N.log; exit 1; }
F=$(date +%s)
echo "== $N $* ($((F-S))s)"; /work/main/target/release/examples/worldjudge /tmp/sw/$N/manifest.jsonl | head -5 | tr '\n' ' '; echo
/work/main/target/release/examples/contrastprobe /tmp/sw/$N/manifest.jsonl 2>&1 | tail -1
