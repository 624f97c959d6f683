#!/usr/bin/env bash
# Capítulo 4: as sessões nox e os comandos do pacote.
set -euo pipefail
# O nox instalado no capítulo 3 vive no ambiente virtual .venv; use-o se não houver outro no PATH.
command -v nox >/dev/null || source .venv/bin/activate

# --8<-- [start:sessoes]
nox -l
# --8<-- [end:sessoes]

# --8<-- [start:ajuda]
farense-guide --help
python -m farense_guide train --help
# --8<-- [end:ajuda]

# --8<-- [start:perfis]
ls farense_guide/profiles
# --8<-- [end:perfis]
