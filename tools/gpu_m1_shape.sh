#!/usr/bin/env bash
# The m1-16gb profile's exact settings on a Mistral-7B-shaped model with random 4-bit weights, through
# `farense-guide train`, on an NVIDIA GPU with MLX's CUDA backend: the measured peak memory against the
# estimator, with and without gradient checkpointing, and the tokens/s. Record: runs/m1-shape-cuda/.
#
# How it was made: on the device tool's machine (one H200, Python 3.12, no internet), with build/gpu/
# carried: the wheels mlx 0.32.4 and mlx-lm 0.32.2, SmolLM2's tokenizer (tokenizer/), and the unpacked
# mlx-cuda-13 0.32.4 wheel as cuda.tar.xz in two parts (cuda.part-aa, first copied to /root/stage).
# tools/m1_shape.py builds the model and the data (every answer over 512 tokens: every batch 2 x 512).
set -euo pipefail
STEPS=${STEPS:-40}

mkdir -p /root/stage
[ -f build/gpu/cuda.part-aa ] && cp build/gpu/cuda.part-aa /root/stage/
[ -f build/gpu/cuda.part-ab ] && cp build/gpu/cuda.part-ab /root/stage/
rm -rf /root/site && mkdir -p /root/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /root/site build/gpu/*.whl
cat /root/stage/cuda.part-* | tar -xJf - -C /root/site
export PYTHONPATH=/root/site:$PWD FARENSE_CACHE=/root/cache PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import mlx.core as mx; print(mx.default_device(), mx.device_info())" | tee -a "$OUT/gpu.txt"

time python3 tools/m1_shape.py model /root/m1-shape --tokenizer build/gpu/tokenizer 2>&1 | tee "$OUT/model.log"
python3 tools/m1_shape.py data /root/m1-data
du -sh /root/m1-shape | tee -a "$OUT/model.log"

rm -rf runs/m1-shape-cuda runs/m1-shape-cuda-no-checkpoint
common=(--profile m1-16gb --set model=/root/m1-shape --set data=/root/m1-data --max-steps "$STEPS" --set val_batches=2)
python3 -m farense_guide train "${common[@]}" --run-name m1-shape-cuda 2>&1 | grep -v WARNING | tee "$OUT/train-checkpoint.log"
# Without checkpointing the estimate is over the profile's 10 GB limit (the point of checkpointing on the M1):
# the limit goes up so that the run measures what it would take.
python3 -m farense_guide train "${common[@]}" --set grad_checkpoint=false --set memory_limit_gb=100 \
  --run-name m1-shape-cuda-no-checkpoint 2>&1 | grep -v WARNING | tee "$OUT/train-no-checkpoint.log"
python3 tools/m1_shape.py record runs/m1-shape-cuda runs/m1-shape-cuda-no-checkpoint --output runs/m1-shape-cuda/m1_shape_record.json \
  | tee "$OUT/record.txt"
tar -czf "$OUT/m1-shape-cuda.tar.gz" --exclude checkpoints --exclude adapters runs/m1-shape-cuda runs/m1-shape-cuda-no-checkpoint
