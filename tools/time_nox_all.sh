#!/usr/bin/env bash
# Times the README's first command from a fresh clone and keeps its record in this repository (issue 17):
#
#   bash tools/time_nox_all.sh        # run it on a quiet machine; takes ~30 min
#
# It clones HEAD into /tmp/nox-all/main (with ../shared beside it, as CI has), with an empty pip cache and an empty
# model cache (the SmolLM2 conversion counts), runs `pip install nox && nox -s all` in a new virtual environment,
# and writes the run's record into runs/<the nox run>/: nox-all.log, timing.txt (wall time, machine, commit) and the
# run's files without adapters or checkpoints. Then it adds the folder to .gitignore's exceptions, so that
# `git add runs/<the nox run>` commits it: a record that .gitignore hid was lost once (2 December 2026).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=/tmp/nox-all
rm -rf "$WORK" && mkdir -p "$WORK/pip-cache" "$WORK/model-cache"
git clone -q "$ROOT" "$WORK/main"
[ -d "$ROOT/../shared" ] && cp -r "$ROOT/../shared" "$WORK/shared"
python3 -m venv "$WORK/venv"

cd "$WORK/main"
before=$(ls -d runs/all-* 2>/dev/null || true)
started=$(date -u +%FT%TZ)
start=$SECONDS
rc=0
env -u LD_PRELOAD -u FARENSE_PROFILE PIP_CACHE_DIR="$WORK/pip-cache" FARENSE_CACHE="$WORK/model-cache" PATH="$WORK/venv/bin:$PATH" \
  bash -c 'pip install -q nox && nox -s all' >"$WORK/nox-all.log" 2>&1 || rc=$?
seconds=$((SECONDS - start))

run=$(comm -13 <(printf '%s\n' $before | sort) <(ls -d runs/all-* 2>/dev/null | sort) | tail -1 || true)
[ -n "$run" ] || { echo "o nox -s all não criou nenhum runs/all-* (código $rc); veja $WORK/nox-all.log" >&2; exit 1; }
target="$ROOT/$run"
rm -rf "$target" && mkdir -p "$target"
tar -cf - --exclude adapters --exclude checkpoints --exclude fused --exclude 'fused-*' -C "$run" . | tar -xf - -C "$target"
cp "$WORK/nox-all.log" "$target/nox-all.log"
{
  echo "comando: pip install nox && nox -s all (clonagem nova de $(git rev-parse --short HEAD), caches de pip e do modelo vazias)"
  echo "início: $started"
  echo "duração: $seconds s ($((seconds / 60)) min $((seconds % 60)) s), instalação incluída"
  echo "código de saída: $rc"
  echo "máquina: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) núcleos"
} >"$target/timing.txt"
line="!$run/"
grep -qxF "$line" "$ROOT/.gitignore" || printf '%s\n' "# the record of a timed nox -s all from a fresh clone (tools/time_nox_all.sh)" "$line" >>"$ROOT/.gitignore"
cat "$target/timing.txt"
echo "registo em $run (git add .gitignore $run)"
exit "$rc"
