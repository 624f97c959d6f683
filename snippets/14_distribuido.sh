#!/usr/bin/env bash
# Capítulo 14: treino em paralelo de dados com dois processos locais (mlx.launch, backend ring).
set -euo pipefail
rm -rf runs/distribuido

# --8<-- [start:distribuido]
farense-guide train --run-name distribuido --processes 2 --max-steps 6
# --8<-- [end:distribuido]

python -c "import json; r = json.load(open('runs/distribuido/run.json')); assert r['processes'] == 2 and r['status'] == 'completed', r"
