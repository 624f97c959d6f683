"""Write guide/notebook.ipynb: the story's ten-cell notebook, calling the package (no outputs saved).

    python tools/make_notebook.py

The notebook runs with the profile of FARENSE_PROFILE (the snippet runner sets `tiny`), else smollm2.
"""

from pathlib import Path

import nbformat

CELLS = [
    ("markdown", """# O caderno do Farense: do zero a um adaptador avaliado

Dez células que repetem, dentro do Python, o que os capítulos fazem na linha de comandos: verificar a máquina,
ler os dados, estimar a memória, treinar, ver a perda, avaliar e conversar. Cada célula chama o pacote
`farense_guide`, por isso os resultados são os mesmos que os da CLI.

O perfil vem da variável `FARENSE_PROFILE` (por omissão `smollm2`; a integração contínua corre este caderno com
`tiny`, um modelo minúsculo de segundos). Em Linux, arranque o Jupyter com o OpenBLAS pré-carregado
(`LD_PRELOAD`, ver o capítulo 2), ou o treino no CPU fica muito mais lento."""),
    ("code", """import os
import time
from pathlib import Path

from farense_guide.config import default_profile_name, load_profile

profile = load_profile(default_profile_name())
print(f"perfil {profile.name}: {profile.description}")"""),
    ("code", """from farense_guide.steps.preflight import run_preflight

report = run_preflight(profile)
for check in report["checks"]:
    print(f"{check['status']:>6}  {check['label']}: {check['value']}")
assert not report["blocking"], "a verificação prévia encontrou um problema bloqueante"
"""),
    ("code", """from farense_guide.data.validate import validate

result = validate(Path(profile.data))
print("exemplos por ficheiro:", result.counts())
print("problemas:", len(result.problems))"""),
    ("code", """import json

first = json.loads(Path(profile.data, "train.jsonl").read_text(encoding="utf-8").splitlines()[0])
for message in first["messages"]:
    print(f"[{message['role']}] {message['content']}")"""),
    ("code", """from farense_guide.inference import default_device, default_quantized
from farense_guide.memory import GB, estimate_for, model_shape

shape = model_shape(profile)
estimate, precision = estimate_for(profile, shape, default_quantized(profile, default_device()))
print(precision)
for row in estimate.rows():
    print(f"{row.label:>40}: {row.size / GB:6.2f} GB")"""),
    ("code", """from farense_guide.runs import RunFolder
from farense_guide.steps.train import TrainPlan, train

run = RunFolder(Path("runs") / f"caderno-{profile.name}-{time.strftime('%Y%m%d-%H%M%S')}")
info = train(TrainPlan(profile, run, command=["notebook.ipynb"]))
print(info.status, "·", info.steps_done, "passos ·", f"{info.throughput.tokens_per_second:.0f} tokens/s")"""),
    ("code", """import matplotlib.pyplot as plt

metrics = run.read_metrics()
train_points = [(m["step"], m["train_loss"]) for m in metrics if m["type"] == "train"]
valid_points = [(m["step"], m["val_loss"]) for m in metrics if m["type"] == "valid"]
plt.plot(*zip(*train_points), label="treino")
plt.plot(*zip(*valid_points), "o-", label="validação")
plt.xlabel("passo")
plt.ylabel("perda")
plt.legend()
plt.show()"""),
    ("code", """from farense_guide.steps.evaluate import evaluate_run

evaluation = evaluate_run(run.path)
for variant in ("base", "tuned"):
    summary = evaluation[variant]
    print(f"{variant:>6}: F1 {summary['f1']['mean']:.3f} "
          f"[{summary['f1']['ci_low']:.3f}; {summary['f1']['ci_high']:.3f}] · AUC {summary['auc']:.3f}")"""),
    ("code", """from farense_guide.data.records import FARENSE_SYSTEM_PROMPT
from farense_guide.inference import load_run_model, stream_answer

info = run.read_info()
question = [{"role": "system", "content": FARENSE_SYSTEM_PROMPT},
            {"role": "user", "content": "Em que cidade joga o Farense?"}]
for label, adapter in (("base", None), ("afinado", run.adapters)):
    model, tokenizer = load_run_model(info.profile, info.backend, adapter)  # a base como o treino a usou, como no chat
    print(f"{label}: {stream_answer(model, tokenizer, question, max_tokens=40)}")"""),
]


def main() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(source))
    path = Path(__file__).resolve().parents[1] / "guide" / "notebook.ipynb"
    nbformat.write(notebook, path)
    print(f"{path}: {len(notebook.cells)} células")


if __name__ == "__main__":
    main()
