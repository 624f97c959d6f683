"""Imported by every Python process of tools/gpu_recipe_study.sh (its folder is on PYTHONPATH).

Many MLX processes share one GPU there, and each one's allocator keeps what it freed as a cache: the first
try ran out of the H200's memory with 17 runs of a 135M model. A small cache limit per process prevents it.
"""
import os

if os.environ.get("FARENSE_STUDY_CACHE_GB"):
    import mlx.core as mx

    mx.set_cache_limit(int(float(os.environ["FARENSE_STUDY_CACHE_GB"]) * 2**30))
