"""A fast BLAS for MLX's CPU build on Linux.

The Linux wheel of `mlx[cpu]` links the reference BLAS, which makes float32 matmuls 20-75x slower
than a tuned one. Two tuned ones preload into it in its place (they export the standard `cblas_*`
symbols): Intel's MKL, from the `mkl` wheel on PyPI, which the project installs itself on
x86-64 Linux (no apt, no root, no compiler), and Debian's OpenBLAS (`libopenblas0-pthread`).
Which is faster depends on the CPU (bench/bench_blas.py): on an Intel Xeon here MKL ran a float32
matmul ~6x faster than OpenBLAS, which picked a slow generic kernel for a CPU it did not recognise,
as virtual machines often report; on an AMD EPYC the opposite was reported (issue 16). So where both exist, each
is timed once on a matmul and the choice is kept per CPU in the cache folder; where one exists
(a fresh machine: MKL), it is used.

A shared library can only be swapped in before the process starts, so the CLI re-runs itself once
as a child process with LD_PRELOAD set; the user's shell is never changed.

This module must not import MLX.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MKL_LIBRARY = "libmkl_rt.so.3"
OPENBLAS_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"),
    Path("/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3"),
)
# FARENSE_BLAS=mkl|openblas picks one; FARENSE_BLAS=reference keeps MLX's own (e.g. to measure the difference).
CHOICE_VAR = "FARENSE_BLAS"
# Marks the child process so it does not re-run itself again.
CHILD_VAR = "FARENSE_BLAS_CHILD"


@dataclass(frozen=True)
class Blas:
    name: str  # "mkl" | "openblas", as blas_in_use() says once it is loaded
    label: str  # for people
    path: Path


def install_hint() -> str:
    """How to get a fast BLAS on this machine, without root where there is a way."""
    if platform.machine() in ("x86_64", "AMD64"):
        return "pip install mkl (no ambiente do projeto; sem root)"
    return "sudo apt-get install libopenblas0-pthread (o MKL só existe para x86-64)"


def pip_mkl() -> Path | None:
    """MKL's runtime library as the `mkl` wheel installs it: in lib/ of this environment, or of the user's site."""
    for prefix in (sys.prefix, site.getuserbase()):
        path = Path(prefix) / "lib" / MKL_LIBRARY
        if path.exists():
            return path
    return None


def debian_openblas() -> Path | None:
    return next((path for path in OPENBLAS_CANDIDATES if path.exists()), None)


def available() -> list[Blas]:
    """The fast BLAS libraries found on this machine, preferred first; none off Linux."""
    if platform.system() != "Linux":
        return []
    found = [Blas("mkl", "MKL (PyPI)", pip_mkl()), Blas("openblas", "OpenBLAS (Debian)", debian_openblas())]
    return [blas for blas in found if blas.path is not None]


def find_fast_blas(choice: str | None = None) -> Blas | None:
    """The fast BLAS to preload: the one `choice` (default: FARENSE_BLAS) names, else the faster available; None for
    'reference'."""
    choice = os.environ.get(CHOICE_VAR, "") if choice is None else choice
    candidates = available()
    if choice == "reference":
        return None
    if choice:
        return next((blas for blas in candidates if blas.name == choice), None)
    if len(candidates) > 1:
        return faster(candidates)
    return candidates[0] if candidates else None


MATMUL_GFLOPS = "from farense_guide.machine import matmul_gflops; print(matmul_gflops())"


def faster(candidates: list[Blas]) -> Blas:
    """The candidate with the faster float32 matmul on this CPU: timed once (a child process each, ~2 s), then read
    from the cache folder."""
    cache = Path(os.environ.get("FARENSE_CACHE", Path.home() / ".cache" / "farense-guide")) / "blas-choice.json"
    key = [cpu_name(), *(str(blas.path) for blas in candidates)]
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved["key"] == key:
            return next(blas for blas in candidates if blas.name == saved["choice"])
    except (OSError, ValueError, KeyError, StopIteration):
        pass
    speeds = {}
    for blas in candidates:
        env = {**os.environ, "LD_PRELOAD": str(blas.path), CHILD_VAR: "1"}
        timed = subprocess.run([sys.executable, "-c", MATMUL_GFLOPS], env=env, capture_output=True, text=True)
        speeds[blas.name] = float(timed.stdout) if timed.returncode == 0 else 0.0
    best = max(candidates, key=lambda blas: speeds[blas.name])
    if not all(speeds.values()):
        return best  # a timing failed: choose for now, time again next time
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "choice": best.name, "gflops": speeds}), encoding="utf-8")
    except OSError:
        pass  # an unwritable cache only means timing again next time
    return best


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def blas_env(base: dict[str, str] | None = None, choice: str | None = None) -> dict[str, str]:
    """A copy of `base` (default: os.environ) with the fast BLAS preloaded, when there is one."""
    env = dict(os.environ if base is None else base)
    blas = find_fast_blas(env.get(CHOICE_VAR, "") if choice is None else choice)
    if blas is None:
        return env
    preload = env.get("LD_PRELOAD", "")
    if str(blas.path) not in preload.split(":"):
        env["LD_PRELOAD"] = f"{blas.path}:{preload}" if preload else str(blas.path)
    return env


def blas_label(choice: str | None = None) -> str:
    """For people: the BLAS a child process gets (the fast one, or MLX's own)."""
    fast = find_fast_blas(choice)
    return fast.label if fast else "de referência"


def blas_in_use() -> str:
    """Which BLAS this process has mapped: 'mkl', 'openblas', 'reference' or 'n/a'.

    Read from /proc/self/maps after MLX is imported; 'n/a' off Linux, where
    MLX uses Accelerate (macOS) or the GPU.
    """
    maps = Path("/proc/self/maps")
    if platform.system() != "Linux" or not maps.exists():
        return "n/a"
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if "/lib" in line}
    if any(Path(path).name == MKL_LIBRARY for path in paths):
        return "mkl"
    blas_paths = {path for path in paths if "/libblas" in path}
    # numpy bundles its own OpenBLAS under another name; only a preloaded libblas counts.
    if any("openblas" in path for path in blas_paths):
        return "openblas"
    return "reference" if blas_paths else "n/a"


def stop_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (even by SIGKILL), so training checkpoints and stops."""
    import ctypes

    PR_SET_PDEATHSIG = 1  # noqa: N806 (the name in <sys/prctl.h>)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def rerun_with_fast_blas(argv: list[str]) -> int | None:
    """Re-run this CLI as a child with the fast BLAS preloaded; None when not needed.

    Returns the child's exit status, which the caller passes on.
    """
    if os.environ.get(CHILD_VAR) == "1":
        return None
    env = blas_env()
    if env.get("LD_PRELOAD") == os.environ.get("LD_PRELOAD"):
        return None  # no fast BLAS here, or it is already preloaded
    env[CHILD_VAR] = "1"
    fast = find_fast_blas()
    print(f"BLAS: a usar {fast.label} ({fast.path}) num processo filho.", file=sys.stderr)
    child = subprocess.Popen([sys.executable, "-m", "farense_guide", *argv], env=env,
                             preexec_fn=stop_with_parent if sys.platform == "linux" else None)
    # Ctrl-C reaches the whole process group, so the child gets it and decides (training saves
    # a checkpoint first); SIGTERM sent to this process alone is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    status = child.wait()
    return 128 - status if status < 0 else status
