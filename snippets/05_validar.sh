#!/usr/bin/env bash
# Capítulo 5: validar os dados do Farense e gerar as estatísticas.
# O perfil só dá o tokenizador e o max_seq_length. Estes comandos indicam o perfil smollm2 (o do guia e
# do cartão de dados), mesmo quando os testes correm com FARENSE_PROFILE=tiny.
set -euo pipefail
# --8<-- [start:validar]
farense-guide data validate data --profile smollm2
# --8<-- [end:validar]
# --8<-- [start:estatisticas]
farense-guide data stats data --profile smollm2 --output runs/data-stats
# --8<-- [end:estatisticas]
test -f runs/data-stats/stats.json && test -f runs/data-stats/token_lengths.png
# A tabela gerada é a do cartão de dados (data/stats/stats.md).
cmp runs/data-stats/stats.md data/stats/stats.md
