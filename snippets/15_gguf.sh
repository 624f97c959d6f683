#!/usr/bin/env bash
# Capítulo 15: exportar o modelo fundido de runs/farense para GGUF, com um Modelfile do Ollama, e ler o ficheiro de volta.
set -euo pipefail
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro o capítulo 7" >&2; exit 1; }

# --8<-- [start:exportar]
farense-guide export runs/farense --gguf
cat runs/farense/export/Modelfile
# --8<-- [end:exportar]

# --8<-- [start:ler]
python - runs/farense/export/farense-f16.gguf <<'PY'
import sys

import gguf

leitor = gguf.GGUFReader(sys.argv[1])
for chave in ("general.architecture", "llama.block_count", "llama.embedding_length", "tokenizer.ggml.model", "tokenizer.ggml.pre"):
    print(f"{chave}: {leitor.get_field(chave).contents()}")
print(f"{len(leitor.tensors)} tensores, p. ex.:")
for tensor in leitor.tensors[:3]:
    print(f"  {tensor.name} {[int(d) for d in tensor.shape]} {tensor.tensor_type.name}")  # dimensões da mais interna para fora
PY
# --8<-- [end:ler]

# --8<-- [start:ollama]
if command -v ollama >/dev/null; then
    (cd runs/farense/export && ollama create farense -f Modelfile)
    ollama run farense "Quando foi fundado o Farense?"
fi
# --8<-- [end:ollama]
