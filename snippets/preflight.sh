#!/usr/bin/env bash
# Verificação prévia da máquina para um perfil de treino (FARENSE_PROFILE=tiny nos testes).
set -euo pipefail
# --8<-- [start:preflight]
farense-guide preflight --profile "${FARENSE_PROFILE:-smollm2}"
# --8<-- [end:preflight]
