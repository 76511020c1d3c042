#!/bin/bash
# tenth session: the good samples only at the noisiest timesteps (800..1000: layout and count)
cd /tmp/h3
bash run.sh goodT800 --lr 1e-4 --steps 300 --timesteps 800..1000
/work/main/target/release/examples/shapeprobe goodT800/gen/manifest.jsonl
