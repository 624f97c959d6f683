"""Capítulo 12: o que o run.json de um run regista, e se os dados ainda são os do treino."""

from pathlib import Path

assert Path("runs/farense/run.json").is_file(), "falta runs/farense (capítulo 7)"

# --8<-- [start:registo]
import json
from pathlib import Path

from farense_guide.runs import file_sha256

run = json.loads(Path("runs/farense/run.json").read_text(encoding="utf-8"))
print("comando:", " ".join(run["command"][1:]))
print("versões:", run["versions"])
print("máquina:", run["machine"], "·", run["backend"]["method"], "em", run["backend"]["device"])
print("semente:", run["profile"]["seed"])
for split, ficheiro in run["data"].items():
    igual = file_sha256(Path(ficheiro["path"])) == ficheiro["sha256"]
    print(f"{split}: {ficheiro['path']} {'igual ao do treino' if igual else 'MUDOU desde o treino'}")
# --8<-- [end:registo]
