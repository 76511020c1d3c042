#!/bin/bash
# tenth session: is it double guidance? the fine-tuned (g3 samples) and original models judged at guidance 1 and 2
cd /tmp/h3
bash evalg.sh orig /work/main/assets/world/sd 1
bash evalg.sh good300 /tmp/h3/good300/model 1
bash evalg.sh orig /work/main/assets/world/sd 2
bash evalg.sh good300 /tmp/h3/good300/model 2
