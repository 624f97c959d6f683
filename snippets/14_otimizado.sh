#!/usr/bin/env bash
# Capítulo 14: um treino curto com gradient checkpointing, num run próprio (runs/otimizado).
set -euo pipefail
rm -rf runs/otimizado  # o snippet pode correr mais de uma vez na mesma cópia

# --8<-- [start:checkpointing]
farense-guide train --run-name otimizado --grad-checkpoint --max-steps 10
# --8<-- [end:checkpointing]

python -c "import json; r = json.load(open('runs/otimizado/run.json')); assert r['profile']['grad_checkpoint'] and r['status'] == 'completed', r['status']"
