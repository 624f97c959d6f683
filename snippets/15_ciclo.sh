#!/usr/bin/env bash
# Capítulo 15: o ciclo de melhoria. As perguntas em que o run falhou, a reconstrução dos dados a partir de
# data/source/, um treino novo e a comparação de dois runs, pergunta a pergunta, no mesmo conjunto de teste.
set -euo pipefail
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro o capítulo 7" >&2; exit 1; }
# A avaliação de runs/farense é a do capítulo 10; se este snippet correr sozinho, faz-se aqui (o mesmo comando).
[ -f runs/farense/evaluation/predictions.jsonl ] || farense-guide evaluate runs/farense

# --8<-- [start:piores]
python - runs/farense <<'PY'
import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
rows = [json.loads(line) for line in (run / "evaluation" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
rows.sort(key=lambda row: row["tuned_scores"]["f1"])
for row in rows[:5]:  # as cinco respostas com menor F1
    print(f"[{row['id']}] F1 {row['tuned_scores']['f1']:.2f} · {row['question']}")
    print(f"    esperado: {row['reference']}")
    print(f"    obtido:   {row['tuned_answer'][:160]}")
PY
# --8<-- [end:piores]

antes="$(cat data/train.jsonl data/valid.jsonl data/test.jsonl | cksum)"
export FARENSE_PROFILE=smollm2   # a validação conta os tokens com o max_seq_length do modelo a sério
# --8<-- [start:reconstruir]
python data/build_dataset.py
farense-guide data validate
# --8<-- [end:reconstruir]
export FARENSE_PROFILE=tiny
# sem alterações em data/source/, a reconstrução dá os mesmos ficheiros, byte a byte
[ "$(cat data/train.jsonl data/valid.jsonl data/test.jsonl | cksum)" = "$antes" ]

# Um run contra si mesmo: todas as diferenças são zero e nenhuma é significativa.
# --8<-- [start:comparar]
farense-guide compare runs/farense runs/farense --json runs/farense/evaluation/compare.json
# --8<-- [end:comparar]
grep -q '"significant": false' runs/farense/evaluation/compare.json
! grep -q '"significant": true' runs/farense/evaluation/compare.json

# O treino novo e as duas avaliações levam minutos: só correm com FARENSE_SNIPPETS_CICLO=1.
retreinar() {
# --8<-- [start:retreinar]
farense-guide train --run-name farense-2
farense-guide evaluate runs/farense-2
farense-guide evaluate runs/farense      # o run antigo, de novo, no test.jsonl de agora
farense-guide compare runs/farense runs/farense-2
# --8<-- [end:retreinar]
}
if [ "${FARENSE_SNIPPETS_CICLO:-0}" = 1 ]; then retreinar; fi
