#!/usr/bin/env bash
# Capítulo 15: usar o adaptador de runs/farense (capítulo 7) com a CLI do guia e com o mlx-lm.
set -euo pipefail
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro o capítulo 7" >&2; exit 1; }

# --8<-- [start:chat]
farense-guide chat --adapter runs/farense --base --max-tokens 60 "Quando foi fundado o Farense?"
# --8<-- [end:chat]

# --8<-- [start:modelo]
farense-guide model runs/farense
# --8<-- [end:modelo]
test -f "$(farense-guide model runs/farense)/config.json"

# --8<-- [start:gerar]
SISTEMA="$(python -c 'from farense_guide.data.records import FARENSE_SYSTEM_PROMPT; print(FARENSE_SYSTEM_PROMPT)')"
mlx_lm.generate --model "$(farense-guide model runs/farense)" \
    --adapter-path runs/farense/adapters \
    --system-prompt "$SISTEMA" \
    --prompt "Quando foi fundado o Farense?" \
    --max-tokens 60
# --8<-- [end:gerar]
