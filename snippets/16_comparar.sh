#!/usr/bin/env bash
# Capítulo 16: a mesma pergunta ao modelo base e ao afinado (runs/farense, treinado no capítulo 7).
set -euo pipefail
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro os snippets do capítulo 7" >&2; exit 1; }

# --8<-- [start:comparar]
farense-guide chat --adapter runs/farense --base "Quando foi fundado o Sporting Clube Farense?"
# --8<-- [end:comparar]
