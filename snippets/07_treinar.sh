#!/usr/bin/env bash
# Capítulo 7: o treino que os capítulos seguintes usam (runs/farense). Nos testes, FARENSE_PROFILE=tiny.
set -euo pipefail
# --8<-- [start:treinar]
farense-guide train --run-name farense
# --8<-- [end:treinar]
python - <<'PY'
import json
info = json.load(open("runs/farense/run.json", encoding="utf-8"))
assert info["status"] in ("completed", "early_stopped"), info["status"]
assert info["adapters"]["best"] == "adapters"
PY
# --8<-- [start:pasta]
find runs/farense -maxdepth 2 | sort
# --8<-- [end:pasta]
test -f runs/farense/adapters/adapters.safetensors && test -f runs/farense/adapters/last/adapter_config.json
