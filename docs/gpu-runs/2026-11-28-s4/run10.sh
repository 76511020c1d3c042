#!/usr/bin/env bash
# 2026-11-28 (eleventh session): the two calls after run9.sh on the same warm H200, as run
# (they were typed as one command line each; written out here). The same test bed and config
# (.gpu/s4bed, ft-paper.json: 100 updates of 256 samples + 256 renders, beta 1):
#   F4: the good samples alone (--beta 0), lr 2e-5;
#   F5: the renders alone (every label set to 0: only the pre-training loss), lr 2e-5 (control);
#   F7: F1 at lr 5e-6;  F6: F1 for 200 updates (lr 2e-5).
set -u; G=.gpu; S=$G/s4bed
xz -dc $G/rlhf-t2i.xz > /tmp/r && chmod +x /tmp/r
RUN="bash $G/run-on-device.sh"
sed 's/"target":1.0/"target":0.0/' $S/labels.jsonl > /tmp/zero.jsonl
for v in "F4 70 $S/labels.jsonl --lr 2e-5 --beta 0" "F5 70 /tmp/zero.jsonl --lr 2e-5 --beta 1" \
         "F7 45 $S/labels.jsonl --lr 5e-6" "F6 75 $S/labels.jsonl --lr 2e-5 --steps 200"; do
  set -- $v; n=$1; lim=$2; l=$3; shift 3
  timeout $lim $RUN /tmp/r finetune --model $S/sd --manifest $S/train/manifest.jsonl --labels $l \
    --pretrain $S/dpre/captions.jsonl --config $G/ft-paper.json --out /tmp/$n --device cuda "$@" > $OUT/$n.log 2>&1
  echo "exit $?" >> $OUT/$n.log
  $RUN /tmp/r generate --prompts $G/p80.jsonl --out /tmp/$n/gen --model /tmp/$n/model --images-per-prompt 4 \
    --scheduler ddpm --steps 25 --guidance 3 --batch-size 160 --device cuda >> $OUT/$n.log 2>&1
  (cd /tmp/$n && tar -czf $OUT/$n-gen.tgz gen)
done
