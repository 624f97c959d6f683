#!/usr/bin/env bash
# Capítulo 6: alterar chaves do perfil na linha de comandos; o run.json guarda o perfil resolvido.
set -euo pipefail
rm -rf runs/rank16  # o run desta demonstração: refeito de cada vez que o snippet corre
# --8<-- [start:alterar]
farense-guide train --run-name rank16 --max-steps 4 --set lora.rank=16 --set lora.dropout=0.1 --set val_batches=2
python -c 'import json; perfil = json.load(open("runs/rank16/run.json"))["profile"]; print(perfil["lora"], perfil["max_steps"])'
# --8<-- [end:alterar]
python - <<'PY'
import json
profile = json.load(open("runs/rank16/run.json", encoding="utf-8"))["profile"]
assert profile["lora"]["rank"] == 16 and profile["lora"]["dropout"] == 0.1 and profile["max_steps"] == 4, profile
PY
# --8<-- [start:chave-errada]
farense-guide train --run-name rank16-erro --set lora.rnak=16 && codigo=0 || codigo=$?
echo "código de saída: $codigo"
# --8<-- [end:chave-errada]
test "$codigo" -eq 2 && test ! -e runs/rank16-erro
