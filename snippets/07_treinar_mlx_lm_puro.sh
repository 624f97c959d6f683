#!/usr/bin/env bash
# Capítulo 7: a mesma afinação só com o mlx-lm (mlx_lm.lora e mlx_lm.generate) e o adaptador que ele escreve
# avaliado pelo farense-guide contra o modelo base. Usa a base do run runs/farense (snippets/07_treinar.sh).
set -euo pipefail
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro snippets/07_treinar.sh" >&2; exit 1; }
rm -rf runs/mlx-lm-puro  # o run desta demonstração: refeito de cada vez que o snippet corre

# Nos testes do guia (FARENSE_PROFILE=tiny) a base é o modelo minúsculo, que só tem duas camadas: o treino adapta
# as duas e faz poucos passos, e a avaliação fica pelas primeiras perguntas. Fora dos testes, os dois ficam vazios.
AJUSTES="" LIMITE=""
if [ "${FARENSE_PROFILE:-}" = tiny ]; then
    AJUSTES="--num-layers 2 --iters 4 --val-batches 1"
    LIMITE="--limit 6"
fi

# --8<-- [start:omissoes]
python - <<'PY'
from importlib.metadata import version

import yaml
from mlx_lm.lora import CONFIG_DEFAULTS

receita = yaml.safe_load(open("snippets/07_treinar_mlx_lm_puro.yaml", encoding="utf-8"))
print(f"{'chave':<24}{'omissão do mlx-lm ' + version('mlx-lm'):<44}esta receita")
for chave, valor in {"model": "a pasta dada a --model", **receita}.items():
    omissao = CONFIG_DEFAULTS.get(chave, "—")
    print(f"{chave:<24}{str(omissao):<44}{valor}{'' if omissao == valor else '   (diferente)'}")
PY
# --8<-- [end:omissoes]

# --8<-- [start:treinar]
BASE="$(farense-guide model runs/farense)"  # a pasta da base que o treino do capítulo usou nesta máquina
mlx_lm.lora --train -c snippets/07_treinar_mlx_lm_puro.yaml --model "$BASE" $AJUSTES
# --8<-- [end:treinar]
# --8<-- [start:pasta]
ls runs/mlx-lm-puro/adapters
# --8<-- [end:pasta]
test -f runs/mlx-lm-puro/adapters/adapters.safetensors && test ! -e runs/mlx-lm-puro/run.json

# --8<-- [start:gerar]
SISTEMA="$(python -c 'import json; print(json.loads(open("data/train.jsonl").readline())["messages"][0]["content"])')"
mlx_lm.generate --model "$BASE" --adapter-path runs/mlx-lm-puro/adapters \
    --system-prompt "$SISTEMA" --prompt "Quando foi fundado o Farense?" --max-tokens 60
# --8<-- [end:gerar]

# --8<-- [start:avaliar]
farense-guide evaluate runs/mlx-lm-puro $LIMITE
# --8<-- [end:avaliar]
python - <<'PY'
import json
info = json.load(open("runs/mlx-lm-puro/run.json", encoding="utf-8"))
report = json.load(open("runs/mlx-lm-puro/evaluation/evaluation_report.json", encoding="utf-8"))
assert info["trained_by"] == "mlx_lm.lora" and info["profile"]["mask_prompt"] is True, info["profile"]
assert report["tuned"]["perplexity"] != report["base"]["perplexity"]  # o adaptador do mlx-lm foi mesmo carregado
PY
