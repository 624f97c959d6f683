#!/usr/bin/env bash
# Capítulo 5: a validação apanha um ficheiro estragado, e o clean faz uma cópia limpa.
set -euo pipefail
pasta=$(mktemp -d)
trap 'rm -rf "$pasta"' EXIT
# Uma cópia das primeiras linhas de valid.jsonl, com seis estragos típicos a seguir.
head -n 4 data/valid.jsonl > "$pasta/valid.jsonl"
sed -n 1p data/valid.jsonl >> "$pasta/valid.jsonl"                      # linha 5: repetida da linha 1
printf '\n' >> "$pasta/valid.jsonl"                                     # linha 6: vazia
printf '%s\n' '{"messages": [{"role": "user", "content": "Quem fundou o Farense?"}' >> "$pasta/valid.jsonl"  # linha 7: JSON cortado
printf '%s\n' '{"messages": [{"role": "assistant", "content": "João Gralho."}, {"role": "user", "content": "Quem fundou o Farense?"}]}' >> "$pasta/valid.jsonl"  # linha 8: papéis trocados
printf '%s\n' '{"pergunta": "Qual é a alcunha do Farense?", "resposta": "Leões de Faro."}' >> "$pasta/valid.jsonl"  # linha 9: chaves erradas
printf '%s\n' '{"question": "Qual é a alcunha do Farense?", "answer": "A alcunha do clube é «Leões de Faro»."}' >> "$pasta/valid.jsonl"  # linha 10: outro formato
# --8<-- [start:validar-estragado]
farense-guide data validate "$pasta" --no-tokens && codigo=0 || codigo=$?
echo "código de saída: $codigo"
# --8<-- [end:validar-estragado]
test "$codigo" -eq 1 || { echo "esperava o código 1 (há problemas); veio $codigo" >&2; exit 1; }
farense-guide data validate "$pasta" --no-tokens --json > "$pasta/problemas.json" || true
python - "$pasta/problemas.json" <<'PY'
import json, sys
codes = [(p["line"], p["code"]) for p in json.load(open(sys.argv[1], encoding="utf-8"))["problems"]]
expected = [(5, "duplicate"), (6, "empty_line"), (7, "invalid_json"), (8, "role_order"), (9, "missing_keys"), (10, "mixed_formats")]
assert codes == expected, codes
PY
rm "$pasta/problemas.json"
# --8<-- [start:limpar]
farense-guide data clean "$pasta" --output "$pasta/limpo" --no-tokens
cat "$pasta/limpo/clean_report.md"
farense-guide data validate "$pasta/limpo" --no-tokens
# --8<-- [end:limpar]
test "$(wc -l < "$pasta/limpo/valid.jsonl")" -eq 5
