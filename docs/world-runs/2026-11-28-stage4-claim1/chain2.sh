#!/bin/bash
cd /tmp/s4
while pgrep -f chain1.sh > /dev/null; do sleep 5; done
CFG=/tmp/ft/cd.json ./run.sh good300-cd --lr 1e-4 --steps 300
CFG=/tmp/ft/cd.json ./run.sh attn2-cd --lr 1e-4 --steps 300 --trainable attn2
