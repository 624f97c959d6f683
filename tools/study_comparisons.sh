#!/usr/bin/env bash
# The recipe study's paired comparisons (issue 17): for each pair, B − A on the test questions both runs answered
# (farense-guide compare), saved as runs/study/comparisons/<A>__<B>.json. A recipe is "better" only where the
# paired test says so (p < 0.05), not where two separate intervals merely do not overlap.
set -euo pipefail
S=runs/study
PAIRS=(
  "$S/e3-lr2e-4 $S/e3-lr5e-4"              # the learning rate at three epochs, the same seed
  "$S/e3-lr2e-4 $S/e3-lr5e-4-seed1"        # ... and with two other seeds
  "$S/e3-lr2e-4 $S/e3-lr5e-4-seed2"
  "$S/reference-lr2e-4 $S/e3-lr2e-4"       # the old recipe on the CPU (the old reference) and on the GPU
  "runs/reference $S/e3-lr5e-4"            # the new recipe (runs/reference) on the CPU and on the GPU
  "$S/reference-lr2e-4 runs/reference"     # the new reference against the old, both on the CPU
  "$S/e2-lr5e-4 $S/e3-lr5e-4"              # a third epoch
  "$S/e3-lr5e-4 $S/e4-lr5e-4"              # a fourth epoch
  "$S/e3-lr5e-4 $S/e3-lr7e-4"              # a higher learning rate
  "$S/e3-lr5e-4 $S/e3-lr5e-4-r16"          # rank 16
  "$S/e3-lr5e-4 $S/e3-lr5e-4-L30"          # all 30 layers
  "$S/e3-lr5e-4 $S/e3-lr5e-4-drop0"        # no dropout
  "$S/e2-lr5e-4 $S/e2-lr3e-4-L30"          # two epochs: 30 layers
  "$S/e1-lr5e-4 $S/e1-lr5e-4-b2"           # one epoch: batch 2 instead of 4
  "$S/e3-lr5e-4 $S/e3-lr5e-4-every"        # the loss on every answer of a conversation, three seeds
  "$S/e3-lr5e-4-seed1 $S/e3-lr5e-4-every-seed1"
  "$S/e3-lr5e-4-seed2 $S/e3-lr5e-4-every-seed2"
  "$S/e3-lr5e-4 $S/e3-lr5e-4-scale10"      # the LoRA scale: half ...
  "$S/e3-lr5e-4 $S/e3-lr5e-4-scale40"      # ... and double
  "$S/e3-lr5e-4 $S/e3-lr5e-4-nomask"       # the loss on the prompt too (mask_prompt false)
  "$S/e3-lr5e-4 $S/e3-lr5e-4-constant"     # a constant learning rate instead of the cosine
  "$S/e3-lr5e-4 $S/e3-lr5e-4-L8"           # 8 layers instead of 16
  "$S/e3-lr5e-4 $S/e3-lr5e-4-r4"           # rank 4 instead of 8
  "$S/e3-lr5e-4 $S/e3-lr5e-4-b2"           # batch 2 instead of 4 (twice the updates)
  "$S/e3-lr5e-4 $S/e3-lr5e-4-b2-acc2"      # batch 2 with two accumulated steps (the same updates, less padding)
  "$S/e3-lr2e-4 $S/e3-lr3e-4"              # the learning rate: 3e-4 against 2e-4 ...
  "$S/e3-lr3e-4 $S/e3-lr5e-4"              # ... and 5e-4 against 3e-4
  "$S/e2-lr5e-4 $S/e2-lr5e-4-b2"           # two epochs: batch 2 instead of 4, two seeds
  "$S/e2-lr5e-4-seed1 $S/e2-lr5e-4-b2-seed1"
  "$S/s130-lr5e-4 $S/s196-lr5e-4"          # the half-hour recipe against three quarters of an epoch
  "runs/all-curto-20261125-232452 $S/s130-lr5e-4"  # the half-hour recipe against the old shortened nox -s all
)
mkdir -p "$S/comparisons"
for pair in "${PAIRS[@]}"; do
  read -r a b <<<"$pair"
  echo "## $(basename "$a") → $(basename "$b")"
  farense-guide compare "$a" "$b" --json "$S/comparisons/$(basename "$a")__$(basename "$b").json"
  echo
done
