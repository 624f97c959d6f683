#!/usr/bin/env bash
# Capítulo 8: um perfil que não cabe é recusado antes de carregar o modelo, com a estimativa e o que mudar.
set -euo pipefail
# --8<-- [start:recusa]
farense-guide train --run-name enorme --batch-size 4096 --max-seq-length 8192 && codigo=0 || codigo=$?
echo "código de saída: $codigo"
# --8<-- [end:recusa]
test "$codigo" -eq 2 || { echo "esperava o código 2 (recusado); veio $codigo" >&2; exit 1; }
test ! -e runs/enorme  # nada foi carregado nem escrito
