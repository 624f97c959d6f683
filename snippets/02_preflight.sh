#!/usr/bin/env bash
# Capítulo 2: a arquitetura do Python e a verificação prévia da máquina.
# Nos testes corre com FARENSE_PROFILE=tiny; sem essa variável o perfil é o smollm2.
set -euo pipefail

# --8<-- [start:arquitetura]
python3 -c "import platform; print(platform.machine())"
# --8<-- [end:arquitetura]

# --8<-- [start:preflight]
farense-guide preflight
# --8<-- [end:preflight]
test -f runs/preflight.json

# --8<-- [start:json]
farense-guide preflight --json
# --8<-- [end:json]
