#!/usr/bin/env bash
# Capítulo 5: dados seus, do princípio ao fim. O CSV de snippets/dados/ passa a JSONL (dividido item a item), é
# validado e descrito, treina-se um adaptador e avalia-se. Nos testes, FARENSE_PROFILE=tiny: segundos, e respostas sem
# sentido (o modelo é aleatório); o snippet confirma o caminho, não a qualidade.
set -euo pipefail
rm -rf runs/dados-biblioteca runs/biblioteca  # os dados e o run desta demonstração: refeitos de cada vez

# --8<-- [start:preparar]
python snippets/05_dados_proprios.py snippets/dados/perguntas.csv --output runs/dados-biblioteca
farense-guide data validate runs/dados-biblioteca
# --8<-- [end:preparar]

# A divisão é item a item: cada item tem uma pergunta no teste e outra na validação, e as restantes no treino.
python - <<'PY'
import json
from collections import Counter
ler = lambda nome: [json.loads(l)["meta"] for l in open(f"runs/dados-biblioteca/{nome}.jsonl", encoding="utf-8")]
treino, validacao, teste = ler("train"), ler("valid"), ler("test")
itens = Counter(m["id"] for m in treino + validacao + teste)
assert Counter(m["id"] for m in teste) == Counter(m["id"] for m in validacao) == Counter(dict.fromkeys(itens, 1))
assert set(m["id"] for m in treino) == set(itens), "um item sem perguntas no treino"
PY

# --8<-- [start:treinar]
farense-guide train --data runs/dados-biblioteca --run-name biblioteca
farense-guide evaluate runs/biblioteca
# --8<-- [end:treinar]

# A avaliação leu meta.kind: as perguntas fora do âmbito do teste são as do CSV.
python - <<'PY'
import json
relatorio = json.load(open("runs/biblioteca/evaluation/evaluation_report.json", encoding="utf-8"))
teste = [json.loads(l)["meta"] for l in open("runs/dados-biblioteca/test.jsonl", encoding="utf-8")]
assert relatorio["data"]["test"]["path"] == "runs/dados-biblioteca/test.jsonl", relatorio["data"]
assert relatorio["items"] == len(teste), relatorio["items"]
assert relatorio["out_of_scope_items"] == sum(m["kind"] == "out_of_scope" for m in teste), relatorio["out_of_scope_items"]
PY
