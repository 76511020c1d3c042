#!/bin/bash
cd /tmp/s4
./run.sh good300 --lr 1e-4 --steps 300
./run.sh attn2-1e-4 --lr 1e-4 --steps 300 --trainable attn2
./run.sh attn2-5e-4 --lr 5e-4 --steps 300 --trainable attn2
