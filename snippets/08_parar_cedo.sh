#!/usr/bin/env bash
# Capítulo 8: paragem antecipada. Com lora.scale=0 o adaptador não mexe na saída do modelo, por isso a
# perda de validação não pode melhorar e o treino para ao fim de early_stopping_patience validações.
set -euo pipefail
rm -rf runs/cedo  # o run desta demonstração: refeito de cada vez que o snippet corre
# --8<-- [start:cedo]
farense-guide train --run-name cedo --set lora.scale=0 --set early_stopping_patience=2 --set steps_per_eval=2 --set val_batches=2
# --8<-- [end:cedo]
python - <<'PY'
import json
info = json.load(open("runs/cedo/run.json", encoding="utf-8"))
assert info["status"] == "early_stopped" and info["steps_done"] == 4, (info["status"], info["steps_done"])
PY
