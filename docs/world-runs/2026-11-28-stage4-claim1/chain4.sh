#!/bin/bash
# Claim 1 on stage 4: caption dropout (0.1) combined with high timesteps only, a small lr, the
# cross-attention only and the pre-training loss; 300 steps of 8 (CPU)
cd /tmp/s4
export CFG=/tmp/ft/cd.json
./run.sh cdT600 --lr 1e-4 --steps 300 --timesteps 600..1000
./run.sh cdT800 --lr 1e-4 --steps 300 --timesteps 800..1000
./run.sh attn2-cdT600 --lr 1e-4 --steps 300 --trainable attn2 --timesteps 600..1000
./run.sh cd2e-5 --lr 2e-5 --steps 300
./run.sh attn2-cd-pre --lr 1e-4 --steps 300 --trainable attn2 --pretrain /work/main/.gpu/s4bed/dpre/captions.jsonl --beta 1 --pre-batch 8
