#!/usr/bin/env bash
# Capítulo 5: os três conjuntos saem sempre iguais da fonte (data/source/*.yaml).
set -euo pipefail
pasta=$(mktemp -d)
trap 'rm -rf "$pasta"' EXIT
# --8<-- [start:reconstruir]
python data/build_dataset.py --facts data/sources.md --output "$pasta"
for conjunto in train valid test; do
  cmp "$pasta/$conjunto.jsonl" "data/$conjunto.jsonl" && echo "$conjunto.jsonl: igual ao do repositório"
done
# --8<-- [end:reconstruir]
