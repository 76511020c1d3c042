L=/tmp/h3/labels-bad.jsonl ./run.sh bad300 --lr 1e-4 --steps 300
MAN=/tmp/nz/train/manifest.jsonl L=/tmp/nz/labels.jsonl ./run.sh webgood300 --lr 1e-4 --steps 300
