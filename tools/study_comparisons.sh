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
  "runs/reference $S/e3-lr2e-4"            # the same recipe on the CPU (reference) and on the GPU
  "runs/reference $S/e3-lr5e-4"            # the chosen recipe against today's reference
  "$S/e2-lr5e-4 $S/e3-lr5e-4"              # a third epoch
  "$S/e3-lr5e-4 $S/e4-lr5e-4"              # a fourth epoch
  "$S/e3-lr5e-4 $S/e3-lr7e-4"              # a higher learning rate
  "$S/e3-lr5e-4 $S/e3-lr5e-4-r16"          # rank 16
  "$S/e3-lr5e-4 $S/e3-lr5e-4-L30"          # all 30 layers
  "$S/e3-lr5e-4 $S/e3-lr5e-4-drop0"        # no dropout
  "$S/e2-lr5e-4 $S/e2-lr3e-4-L30"          # two epochs: 30 layers
  "$S/e1-lr5e-4 $S/e1-lr5e-4-b2"           # one epoch: batch 2 instead of 4
  "$S/s130-lr5e-4 $S/s196-lr5e-4"          # the half-hour recipe against three quarters of an epoch
  "runs/all-curto-20261125-232452 $S/s130-lr5e-4"  # the half-hour recipe against the old shortened nox -s all
  "$S/s130-lr5e-4 runs/all-smollm2-30min-20261202-162807"  # the half-hour recipe on the GPU and in nox -s all on the CPU
  "runs/reference runs/all-smollm2-30min-20261202-162807"  # what nox -s all gives against the reference
)
mkdir -p "$S/comparisons"
for pair in "${PAIRS[@]}"; do
  read -r a b <<<"$pair"
  echo "## $(basename "$a") → $(basename "$b")"
  farense-guide compare "$a" "$b" --json "$S/comparisons/$(basename "$a")__$(basename "$b").json"
  echo
done
