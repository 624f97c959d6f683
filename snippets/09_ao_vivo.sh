#!/usr/bin/env bash
# Capítulo 9: acompanhar ao vivo um treino que corre noutro processo.
set -euo pipefail
rm -rf runs/ao-vivo  # o run desta demonstração: refeito de cada vez que o snippet corre
# --8<-- [start:ao-vivo]
mkdir -p runs/ao-vivo
farense-guide train --run-name ao-vivo --max-steps 10 --set val_batches=2 > runs/ao-vivo/treino.log 2>&1 &
treino=$!
while kill -0 "$treino" 2>/dev/null && [ ! -f runs/ao-vivo/run.json ]; do sleep 0.2; done
farense-guide monitor runs/ao-vivo --interval 1   # atualiza-se até o treino acabar
wait "$treino"
# --8<-- [end:ao-vivo]
grep -q '"status": "completed"' runs/ao-vivo/run.json
