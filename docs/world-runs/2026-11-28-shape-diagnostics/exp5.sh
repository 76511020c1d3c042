#!/bin/bash
# tenth session: stricter shape filter (lowest object IoU >= 0.84: 98 of the 377 good) against 98 good drawn at random
cd /tmp/h3
L=/tmp/h3/strict0.84.jsonl bash run.sh strict84 --lr 1e-4 --steps 300
L=/tmp/h3/rand98.jsonl bash run.sh rand98 --lr 1e-4 --steps 300
for d in strict84 rand98; do /work/main/target/release/examples/shapeprobe $d/gen/manifest.jsonl; done
