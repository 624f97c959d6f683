#!/usr/bin/env bash
# Capítulo 15: o modelo base de runs/farense com o adaptador, servido pelo mlx_lm.server numa API compatível com a
# da OpenAI em 127.0.0.1; espera que responda, faz um pedido e desliga-o.
set -euo pipefail
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro o capítulo 7" >&2; exit 1; }
# Nos testes, uma porta livre (outros processos podem estar a usar a 8080); o leitor usa a 8080.
PORTA="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# --8<-- [start:servir]
PORTA="${PORTA:-8080}"
mlx_lm.server --model "$(farense-guide model runs/farense)" \
    --adapter-path runs/farense/adapters \
    --host 127.0.0.1 --port "$PORTA" &
SERVIDOR=$!
trap 'kill "$SERVIDOR" 2>/dev/null || true' EXIT   # desliga o servidor quando o script termina
# --8<-- [end:servir]

# --8<-- [start:pedido]
python - "$PORTA" <<'PY'
import json
import sys
import time
import urllib.error
import urllib.request

from farense_guide.data.records import FARENSE_SYSTEM_PROMPT

base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(120):  # espera até dois minutos que o servidor arranque
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            if response.status == 200:
                break
    except (urllib.error.URLError, OSError):
        time.sleep(1)
else:
    sys.exit("o servidor não respondeu")

body = {
    "messages": [
        {"role": "system", "content": FARENSE_SYSTEM_PROMPT},
        {"role": "user", "content": "Quando foi fundado o Farense?"},
    ],
    "max_tokens": 60,
    "temperature": 0,
}
request = urllib.request.Request(f"{base}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=300) as response:
    reply = json.load(response)
print(reply["choices"][0]["message"]["content"])
print(reply["usage"])
PY
# --8<-- [end:pedido]

# O servidor aplica mesmo o adaptador: a resposta começa como a do `farense-guide chat --adapter` (greedy nos dois;
# só o início se compara, porque os dois caminhos de geração podem divergir por arredondamentos mais à frente).
servidor="$(python - "$PORTA" <<'PY'
import json, sys, urllib.request
from farense_guide.data.records import FARENSE_SYSTEM_PROMPT
body = {"messages": [{"role": "system", "content": FARENSE_SYSTEM_PROMPT},
                     {"role": "user", "content": "Quando foi fundado o Farense?"}], "max_tokens": 60, "temperature": 0}
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request, timeout=300))["choices"][0]["message"]["content"])
PY
)"
chat="$(farense-guide chat --adapter runs/farense --max-tokens 60 "Quando foi fundado o Farense?" 2>/dev/null)"
[ "${servidor:0:20}" = "${chat:0:20}" ] || { printf 'servidor: %s\nchat:     %s\n' "$servidor" "$chat" >&2; exit 1; }

kill "$SERVIDOR"
wait "$SERVIDOR" 2>/dev/null || true
! kill -0 "$SERVIDOR" 2>/dev/null   # o servidor já não corre
