#!/usr/bin/env bash
# Capítulo 10: avaliar o run do capítulo 7 (runs/farense) e gerar as figuras e tabelas.
# Com FARENSE_PROFILE=tiny o perfil do run tem eval_limit, por isso a avaliação é curta.
set -euo pipefail
test -f runs/farense/run.json  # o run que o capítulo 7 treina

# --8<-- [start:avaliar]
farense-guide evaluate runs/farense
# --8<-- [end:avaliar]

test -f runs/farense/evaluation/evaluation_report.json
test -f runs/farense/evaluation/predictions.jsonl

# --8<-- [start:relatorio]
farense-guide report runs/farense
# --8<-- [end:relatorio]

test -f runs/farense/tables/evaluation.md
test -f runs/farense/figures/roc_curve.png
