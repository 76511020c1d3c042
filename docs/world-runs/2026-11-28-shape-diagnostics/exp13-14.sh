#!/bin/bash
# tenth session: renders of the training captions with degraded outlines (degrade.py AMP), fine-tuned on the ones the oracle accepts.
# AMP 0.3: 304 accepted, shape fidelity 0.837 (exp13); AMP 0.4: 242 accepted, 0.812, the good samples' 0.810 (exp14). usage: exp13-14.sh AMP NAME
cd /tmp/h3
python3 degrade.py $1
/work/main/target/release/examples/worldjudge rdeg/manifest.jsonl rdeg/fb.jsonl | grep "^all"
python3 - <<'P'
import json
fb={json.loads(l)['image_id']:json.loads(l)['label'] for l in open('/tmp/h3/rdeg/fb.jsonl')}
with open('/tmp/h3/rdeg/labels.jsonl','w') as f:
  for l in open('/tmp/h3/rmatch/labels.jsonl'):
    d=json.loads(l)
    if fb[d['image_id']]!='good': d['target']=0.0; d['votes_good']=0; d['votes_bad']=1
    d['path']='images/%s.png'%d['image_id']
    f.write(json.dumps(d)+'\n')
P
/work/main/target/release/examples/shapeprobe --margin rdeg/manifest.jsonl rdeg/labels.jsonl
MAN=/tmp/h3/rdeg/manifest.jsonl L=/tmp/h3/rdeg/labels.jsonl bash run.sh $2 --lr 1e-4 --steps 300
/work/main/target/release/examples/shapeprobe $2/gen/manifest.jsonl | head -1
