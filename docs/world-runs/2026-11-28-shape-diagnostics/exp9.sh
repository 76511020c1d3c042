#!/bin/bash
# tenth session: the 356 good samples redrawn with exact shapes (rerender: the samples' layouts, render outlines)
cd /tmp/h3
MAN=/tmp/h3/rr/manifest.jsonl L=/tmp/h3/rr/labels-oracle.jsonl bash run.sh rr300 --lr 1e-4 --steps 300
/work/main/target/release/examples/shapeprobe rr300/gen/manifest.jsonl
