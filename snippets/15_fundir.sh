#!/usr/bin/env bash
# Capítulo 15: fundir o adaptador de runs/farense na base, com a verificação contra a base com o adaptador, e servir o
# modelo fundido com o mlx_lm.server.
set -euo pipefail
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro o capítulo 7" >&2; exit 1; }

# --8<-- [start:fundir]
farense-guide fuse runs/farense
cat runs/farense/fuse_check/FUSE_CHECK.md
# --8<-- [end:fundir]
python -c 'import json, sys; sys.exit(0 if json.load(open("runs/farense/fused/farense_fuse.json"))["passed"] else 1)'

# --8<-- [start:quatro-bits]
if farense-guide fuse runs/farense --bits 4 --output runs/farense/fused-4bit; then
    echo "a 4 bits, as respostas ficaram dentro da tolerância"
else
    echo "a 4 bits, a fusão foi recusada: veja runs/farense/fuse_check-4bit/FUSE_CHECK.md"
fi
# --8<-- [end:quatro-bits]
test -f runs/farense/fuse_check-4bit/fuse_check.json

PORTA="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# --8<-- [start:servir-fundido]
PORTA="${PORTA:-8080}"
mlx_lm.server --model runs/farense/fused --host 127.0.0.1 --port "$PORTA" &
SERVIDOR=$!
trap 'kill "$SERVIDOR" 2>/dev/null || true' EXIT
# --8<-- [end:servir-fundido]

python - "$PORTA" <<'PY'
import json
import sys
import time
import urllib.request

from farense_guide.data.records import FARENSE_SYSTEM_PROMPT

base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(120):
    try:
        urllib.request.urlopen(f"{base}/health", timeout=2)
        break
    except OSError:
        time.sleep(1)
body = {"messages": [{"role": "system", "content": FARENSE_SYSTEM_PROMPT},
                     {"role": "user", "content": "Quando foi fundado o Farense?"}], "max_tokens": 40, "temperature": 0}
request = urllib.request.Request(f"{base}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request, timeout=300))["choices"][0]["message"]["content"])
PY
