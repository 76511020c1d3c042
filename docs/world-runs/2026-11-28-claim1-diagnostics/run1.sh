M=/work/main/assets/world/sd
S=/tmp/sw/sweep.sh
$S d10g5e1 $M --scheduler ddim --steps 10 --guidance 5 --eta 1
$S d20g5 $M --scheduler ddim --steps 20 --guidance 5
$S p25g3 $M --scheduler ddpm --steps 25 --guidance 3
$S p25g5 $M --scheduler ddpm --steps 25 --guidance 5
$S p25g75 $M --scheduler ddpm --steps 25 --guidance 7.5
$S d10g75 $M --scheduler ddim --steps 10 --guidance 7.5
$S p50g5 $M --scheduler ddpm --steps 50 --guidance 5
