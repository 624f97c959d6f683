#!/usr/bin/env bash
# Capítulo 9: um instantâneo do run do capítulo 7.
set -euo pipefail
# --8<-- [start:monitor]
farense-guide monitor runs/farense --once
# --8<-- [end:monitor]
instantaneo="$(farense-guide monitor runs/farense --once)"
grep -q "perda de validação" <<<"$instantaneo"
