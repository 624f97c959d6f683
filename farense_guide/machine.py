"""Facts about this machine: system memory, CPU, MLX and its device, the BLAS in use.

Preflight turns them into checks; a run records describe_machine() in its run.json.
MLX is imported inside the functions: preflight reports a missing MLX instead of failing.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from farense_guide import blas, macos
from farense_guide.blas import cpu_name
from farense_guide.inference import default_device


def read_memory(system: str, mac: dict | None) -> tuple[int | None, int | None]:
    """(total, available) bytes of system memory."""
    if system == "Darwin" and mac:
        return mac.get("memory_total"), mac.get("memory_available")
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        fields = {}
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        return fields.get("MemTotal"), fields.get("MemAvailable")
    return None, None


def device_info() -> dict:
    """MLX's description of its default device (name, memory limits); {} without MLX."""
    try:
        import mlx.core as mx

        return dict(mx.device_info())
    except Exception:
        return {}


@dataclass
class MlxDevice:
    version: str
    device: str  # "gpu" | "cpu"
    backend: str  # "Metal" | "CUDA" | "CPU"


def detect_mlx() -> MlxDevice:
    """MLX's version and where it computes; raises ImportError when MLX does not import."""
    import mlx.core as mx

    device = default_device()
    backend = "Metal" if mx.metal.is_available() else ("CUDA" if device == "gpu" else "CPU")
    return MlxDevice(version=mx.__version__, device=device, backend=backend)


@dataclass
class BlasState:
    in_use: str  # "mkl" | "openblas" | "reference" | "n/a", as blas.blas_in_use() says
    fast: blas.Blas | None  # the fast BLAS this machine has, loaded or not
    gflops: float | None  # a float32 1024x1024 matmul, measured now (None off Linux)


def blas_state() -> BlasState:
    in_use = blas.blas_in_use()
    return BlasState(in_use=in_use, fast=blas.find_fast_blas(), gflops=matmul_gflops() if in_use != "n/a" else None)


def matmul_gflops(size: int = 1024, seconds: float = 0.3) -> float:
    """GFLOP/s of a float32 size x size matmul on MLX's default device: the best of repeats over about `seconds`."""
    import time

    import mlx.core as mx

    a = mx.random.normal((size, size))
    mx.eval(a @ a)  # warm-up
    best, spent = 0.0, 0.0
    while spent < seconds:
        start = time.perf_counter()
        mx.eval(a @ a)
        elapsed = time.perf_counter() - start
        spent += elapsed
        best = max(best, 2 * size**3 / elapsed / 1e9)
    return best


def describe_machine() -> dict:
    """What a run ran on, for run.json and the guide: chip or CPU, cores, memory, accelerator."""
    system = platform.system()
    mac = macos.read_macos() if system == "Darwin" else None
    total, _ = read_memory(system, mac)
    info = device_info()
    accelerator = info.get("device_name") if info and default_device() == "gpu" else None
    return {
        "system": system, "machine": platform.machine(),
        "processor": (mac or {}).get("chip") or cpu_name(),
        "cores": os.cpu_count(),
        "memory_gb": round(total / 1e9, 1) if total else None,
        "accelerator": accelerator,
    }
