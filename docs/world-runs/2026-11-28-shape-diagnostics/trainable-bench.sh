#!/bin/bash
# usage: tb.sh BIN NAME [flags]: 60 steps of 8 on the test bed's good samples; prints the last logged images/s
B=$1; N=$2; shift 2
rm -rf /tmp/tb-$N
S=$(date +%s.%N)
$B finetune --model /work/main/assets/world/sd --manifest /tmp/h3/train/manifest.jsonl --labels /tmp/h3/labels.jsonl --config /tmp/ft/base.json --out /tmp/tb-$N --device cpu --lr 1e-4 --steps 60 "$@" > /tmp/tb-$N.log 2>&1 || { tail -3 /tmp/tb-$N.log; exit 1; }
E=$(date +%s.%N)
python3 -c "
import json
L=[json.loads(l) for l in open('/tmp/tb-$N/metrics.jsonl')]
print('$N', 'wall %.1f s'%($E-$S), 'images/s (steps 11-60 median) %.1f'%sorted(x['images_per_s'] for x in L[10:])[len(L[10:])//2], 'final loss %.4f'%L[-1]['loss'])"
