#!/usr/bin/env bash
# Capítulo 7: paralelismo de dados com dois processos na mesma máquina (mlx.launch, backend ring).
set -euo pipefail
rm -rf runs/farense-dois  # o run desta demonstração: refeito de cada vez que o snippet corre
# --8<-- [start:distribuido]
farense-guide train --run-name farense-dois --processes 2 --max-steps 6 --set val_batches=2
# --8<-- [end:distribuido]
python - <<'PY'
import json
info = json.load(open("runs/farense-dois/run.json", encoding="utf-8"))
assert info["status"] == "completed" and info["processes"] == 2 and info["steps_done"] == 6, info["status"]
PY
