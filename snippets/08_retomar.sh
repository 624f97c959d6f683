#!/usr/bin/env bash
# Capítulo 8: um treino interrompido com o equivalente de Ctrl-C e retomado de forma exata (run runs/retoma).
set -euo pipefail
rm -rf runs/retoma  # o run desta demonstração: refeito de cada vez que o snippet corre
# --8<-- [start:interromper]
set -m  # controlo de tarefas, como num terminal: o treino fica no seu próprio grupo de processos
farense-guide train --run-name retoma --max-steps 24 &
treino=$!
# espera que o treino entre no ciclo (a primeira linha de metrics.jsonl) e faz o que o Ctrl-C faz:
# manda SIGINT a todo o grupo de processos do treino
while kill -0 "$treino" 2>/dev/null && ! grep -qs '"type"' runs/retoma/metrics.jsonl; do sleep 0.05; done
kill -INT -- "-$treino"
wait "$treino" && codigo=0 || codigo=$?
echo "código de saída: $codigo"
# --8<-- [end:interromper]
test "$codigo" -eq 130 || { echo "esperava o código 130 (interrompido); veio $codigo" >&2; exit 1; }
python - <<'PY'
import json
from pathlib import Path
info = json.loads(Path("runs/retoma/run.json").read_text(encoding="utf-8"))
checkpoints = sorted(p.name for p in Path("runs/retoma/checkpoints").glob("step-*"))
assert info["status"] == "interrupted", info["status"]
assert 0 < info["steps_done"] < info["iterations"]["total_steps"], info["steps_done"]
assert checkpoints[-1] == f"step-{info['steps_done']:07d}", checkpoints
PY
# --8<-- [start:estado]
python -c 'import json; info = json.load(open("runs/retoma/run.json")); print(info["status"], info["steps_done"], "de", info["iterations"]["total_steps"])'
ls runs/retoma/checkpoints
# --8<-- [end:estado]
# --8<-- [start:retomar]
farense-guide train --resume runs/retoma
# --8<-- [end:retomar]
python - <<'PY'
import json
from pathlib import Path
info = json.loads(Path("runs/retoma/run.json").read_text(encoding="utf-8"))
assert info["status"] == "completed", info["status"]
assert info["steps_done"] == info["iterations"]["total_steps"], info["steps_done"]
assert len(info["resumed_at"]) == 1 and info["resumed_at"][0]["step"] > 0, info["resumed_at"]
steps = [m["step"] for m in map(json.loads, Path("runs/retoma/metrics.jsonl").read_text().splitlines())]
assert steps == sorted(steps), steps  # sem entradas repetidas depois da retoma
PY
# --8<-- [start:terminado]
farense-guide train --resume runs/retoma
# --8<-- [end:terminado]
python - <<'PY'
import json
from pathlib import Path
info = json.loads(Path("runs/retoma/run.json").read_text(encoding="utf-8"))
assert info["status"] == "completed" and info["steps_done"] == info["iterations"]["total_steps"]
assert len(info["resumed_at"]) == 2 and info["resumed_at"][1]["step"] == info["steps_done"], info["resumed_at"]
PY
