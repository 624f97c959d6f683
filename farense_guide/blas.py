"""OpenBLAS for MLX's CPU build on Linux.

The Linux wheel of `mlx[cpu]` links the reference BLAS, which makes float32
matmuls ~75x slower than Debian's OpenBLAS. A shared library can only be swapped
in before the process starts, so the CLI re-runs itself once as a child process
with LD_PRELOAD set; the user's shell is never changed.

This module must not import MLX.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

OPENBLAS_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"),
    Path("/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3"),
)
INSTALL_HINT = "sudo apt-get install libopenblas0-pthread"
# Set to 1 to keep the reference BLAS (e.g. to measure the difference).
DISABLE_VAR = "FARENSE_NO_OPENBLAS"
# Marks the child process so it does not re-run itself again.
CHILD_VAR = "FARENSE_OPENBLAS_CHILD"


def find_openblas() -> Path | None:
    """Debian's OpenBLAS libblas.so.3 on Linux, or None (always None off Linux)."""
    if platform.system() != "Linux":
        return None
    return next((p for p in OPENBLAS_CANDIDATES if p.exists()), None)


def openblas_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `base` (default: os.environ) with OpenBLAS preloaded, when it exists."""
    env = dict(os.environ if base is None else base)
    lib = find_openblas()
    if lib is None or env.get(DISABLE_VAR) == "1":
        return env
    preload = env.get("LD_PRELOAD", "")
    if str(lib) not in preload.split(":"):
        env["LD_PRELOAD"] = f"{lib}:{preload}" if preload else str(lib)
    return env


def blas_in_use() -> str:
    """Which BLAS this process has mapped: 'openblas', 'reference' or 'n/a'.

    Read from /proc/self/maps after MLX is imported; 'n/a' off Linux, where
    MLX uses Accelerate (macOS) or the GPU.
    """
    maps = Path("/proc/self/maps")
    if platform.system() != "Linux" or not maps.exists():
        return "n/a"
    blas_paths = {line.split()[-1] for line in maps.read_text().splitlines() if "/libblas" in line}
    # numpy bundles its own OpenBLAS under another name; only a preloaded libblas counts.
    if any("openblas" in path for path in blas_paths):
        return "openblas"
    return "reference" if blas_paths else "n/a"


def stop_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (even by SIGKILL), so training checkpoints and stops."""
    import ctypes

    PR_SET_PDEATHSIG = 1  # noqa: N806 (the name in <sys/prctl.h>)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def rerun_with_openblas(argv: list[str]) -> int | None:
    """Re-run this CLI as a child with OpenBLAS preloaded; None when not needed.

    Returns the child's exit status, which the caller passes on.
    """
    if os.environ.get(CHILD_VAR) == "1" or os.environ.get(DISABLE_VAR) == "1":
        return None
    env = openblas_env()
    if env.get("LD_PRELOAD") == os.environ.get("LD_PRELOAD"):
        return None  # no OpenBLAS here, or it is already preloaded
    env[CHILD_VAR] = "1"
    print(f"BLAS: a usar OpenBLAS ({find_openblas()}) num processo filho.", file=sys.stderr)
    child = subprocess.Popen([sys.executable, "-m", "farense_guide", *argv], env=env,
                             preexec_fn=stop_with_parent if sys.platform == "linux" else None)
    # Ctrl-C reaches the whole process group, so the child gets it and decides (training saves
    # a checkpoint first); SIGTERM sent to this process alone is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    status = child.wait()
    return 128 - status if status < 0 else status
