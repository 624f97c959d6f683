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


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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
    in_use: str  # "openblas" | "reference" | "n/a", as blas.blas_in_use() says
    openblas: Path | None  # the installed OpenBLAS library, loaded or not


def blas_state() -> BlasState:
    return BlasState(in_use=blas.blas_in_use(), openblas=blas.find_openblas())


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
