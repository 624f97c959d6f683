#!/usr/bin/env bash
# Capítulo 8: o treino que os capítulos seguintes usam (runs/farense). Com FARENSE_PROFILE=tiny nos testes.
set -euo pipefail
# --8<-- [start:treinar]
farense-guide train --run-name farense
# --8<-- [end:treinar]
test -f runs/farense/adapters/adapters.safetensors
python - <<'PY'
import json
info = json.load(open("runs/farense/run.json", encoding="utf-8"))
assert info["status"] == "completed", info["status"]
assert info["steps_done"] == info["iterations"]["total_steps"]
PY
