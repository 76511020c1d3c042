#!/bin/bash
# tenth session: good samples whose every object leads its second-best shape by >= 0.08 IoU (102 of 377)
cd /tmp/h3
L=/tmp/h3/marg0.08.jsonl bash run.sh marg08 --lr 1e-4 --steps 300
/work/main/target/release/examples/shapeprobe marg08/gen/manifest.jsonl
/work/main/target/release/examples/shapeprobe --margin marg08/gen/manifest.jsonl
