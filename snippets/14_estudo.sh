#!/usr/bin/env bash
# Capítulo 14: o estudo da receita (runs/study, que vem com o repositório) refeito a partir das pastas dos runs: a tabela
# e a figura, e uma das comparações emparelhadas. Não treina nada; confere que dá o mesmo que os ficheiros guardados.
set -euo pipefail
test -f runs/study/study.csv || { echo "falta runs/study: vem com o repositório" >&2; exit 1; }
saved=$(mktemp)
cp runs/study/study.csv "$saved"

# --8<-- [start:estudo]
farense-guide study runs/study --with runs/reference
farense-guide compare runs/study/e3-lr5e-4 runs/study/e3-lr5e-4-r4 --json comparacao-r4.json
# --8<-- [end:estudo]

cmp runs/study/study.csv "$saved"  # a mesma tabela que a guardada
python - <<'EOF'
import json
fresh = json.load(open("comparacao-r4.json"))["metrics"]
saved = json.load(open("runs/study/comparisons/e3-lr5e-4__e3-lr5e-4-r4.json"))["metrics"]
assert fresh == saved, "a comparação refeita difere da guardada em runs/study/comparisons/"
EOF
rm -f comparacao-r4.json "$saved"
