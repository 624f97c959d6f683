"""Capítulo 2: ler o relatório da verificação prévia (runs/preflight.json) num script."""

# --8<-- [start:relatorio]
import json
from pathlib import Path

report = json.loads(Path("runs/preflight.json").read_text(encoding="utf-8"))
print(f"perfil {report['profile']} · modelo {report['model']} · dispositivo {report['device']}")
for check in report["checks"]:
    print(f"{check['status']:>5}  {check['label']}: {check['value']}")
if report["blocking"]:
    raise SystemExit(f"bloqueantes: {', '.join(report['blocking'])}")
print("Nada bloqueia o treino.")
# --8<-- [end:relatorio]
