#!/usr/bin/env bash
# Capítulo 13: provoca de propósito erros documentados no capítulo e confirma, para cada um, que a CLI
# sai com código diferente de zero e escreve o texto que o capítulo cita. Precisa de runs/farense (capítulo 7).
set -euo pipefail
# sem runs/farense, `train --run-name farense` abaixo começaria um treino a sério em vez de falhar
test -f runs/farense/run.json || { echo "falta runs/farense: corra primeiro o capítulo 7" >&2; exit 1; }

# --8<-- [start:espera_erro]
# espera_erro TEXTO COMANDO...: corre o comando, exige que ele falhe e que escreva TEXTO
espera_erro() {
    local texto="$1"; shift
    local saida
    if saida="$("$@" 2>&1)"; then
        echo "devia ter falhado: $*" >&2
        return 1
    fi
    if ! grep -qF -- "$texto" <<<"$saida"; then
        echo "falhou, mas sem «$texto»: $*" >&2
        echo "$saida" >&2
        return 1
    fi
    echo "ok: $*"
    grep -F -- "erro:" <<<"$saida" | head -n 1
}
ENSAIOS="$(mktemp -d)"   # uma pasta temporária para os ensaios
# --8<-- [end:espera_erro]
trap 'rm -rf "$ENSAIOS"' EXIT

# --8<-- [start:arquitetura]
python -c "import platform; print(platform.machine())"
# --8<-- [end:arquitetura]

# --8<-- [start:perfil]
espera_erro "desconhecido" farense-guide train --profile inexistente
# --8<-- [end:perfil]

# --8<-- [start:modelo]
espera_erro "não é 'smollm2', 'tiny', uma pasta existente" farense-guide model nome-sem-barra
espera_erro "não está disponível offline" env HF_HUB_OFFLINE=1 farense-guide model organizacao/modelo-inexistente
# --8<-- [end:modelo]

# --8<-- [start:cache]
espera_erro "não é possível escrever na pasta de cache" env FARENSE_CACHE=/dev/null/cache farense-guide model tiny
# --8<-- [end:cache]

# --8<-- [start:dados]
espera_erro "não existe." farense-guide train --set data=pasta-inexistente --runs-dir "$ENSAIOS"
# --8<-- [end:dados]
[ -z "$(ls -A "$ENSAIOS")" ]  # a recusa acontece antes de o run ser criado

# Um ficheiro com três linhas problemáticas: JSON partido, um papel que não existe e papéis fora de ordem.
mkdir -p "$ENSAIOS/dados"
cat > "$ENSAIOS/dados/train.jsonl" <<'JSONL'
{"messages": [{"role": "user", "content": "Onde joga o Farense?"}, {"role": "assistant", "content": "No Estádio de São Luís."}]
{"messages": [{"role": "utilizador", "content": "Qual é a alcunha do Farense?"}, {"role": "assistant", "content": "Leões de Faro."}]}
{"messages": [{"role": "assistant", "content": "Preto e branco."}, {"role": "user", "content": "Quais são as cores do Farense?"}]}
JSONL
# --8<-- [start:validar]
farense-guide data validate "$ENSAIOS/dados" --no-tokens || echo "código de saída: $?"
espera_erro "há problemas nos dados" farense-guide data split "$ENSAIOS/dados/train.jsonl" --output "$ENSAIOS/divididos"
# --8<-- [end:validar]
saida="$(farense-guide data validate "$ENSAIOS/dados" --no-tokens 2>&1)" && exit 1
for texto in "JSON inválido na coluna" "papel desconhecido «utilizador»" "papéis fora de ordem" "3 problemas em 3 linhas."; do
    grep -qF -- "$texto" <<<"$saida" || { echo "a validação não escreveu «$texto»:" >&2; echo "$saida" >&2; exit 1; }
done

# --8<-- [start:run]
espera_erro "já existe." farense-guide train --run-name farense
espera_erro "ao retomar, o perfil é o do run" farense-guide train --resume runs/farense --epochs 5
espera_erro "run.json: não existe." farense-guide evaluate "$ENSAIOS"
# --8<-- [end:run]

# --8<-- [start:nan]
espera_erro "a perda deixou de ser finita" farense-guide train --run-name nan --runs-dir "$ENSAIOS" --learning-rate 1e30
espera_erro "não há checkpoints para retomar" farense-guide train --resume "$ENSAIOS/nan"
# --8<-- [end:nan]

mkdir -p "$ENSAIOS/so-run-json" && cp runs/farense/run.json "$ENSAIOS/so-run-json/"
# --8<-- [start:fragmentos]
espera_erro "falta run.json" farense-guide fragments --run "$ENSAIOS" --output "$ENSAIOS/guia"
espera_erro "faltam as tabelas e figuras" farense-guide fragments --run "$ENSAIOS/so-run-json" --output "$ENSAIOS/guia"
# --8<-- [end:fragmentos]

# --8<-- [start:chat]
espera_erro "não tem adapter_config.json" farense-guide chat --adapter "$ENSAIOS" "Quem fundou o Farense?"
espera_erro "--base compara com um adaptador" farense-guide chat --base "Quem fundou o Farense?"
# --8<-- [end:chat]
