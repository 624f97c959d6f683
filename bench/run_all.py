"""Run every benchmark in bench/ and write bench/RESULTS.md: machine, versions and what each printed.

    python bench/run_all.py
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from farense_guide import blas  # noqa: E402
from farense_guide.machine import cpu_name  # noqa: E402


def versions() -> str:
    found = []
    for name in ("mlx", "mlx-lm", "transformers", "farense-guide"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def main() -> None:
    sections = []
    for script in sorted(HERE.glob("bench_*.py")):
        start = time.perf_counter()
        env = {**blas.blas_env(), "TRANSFORMERS_VERBOSITY": "error"}  # as the CLI runs: the fast BLAS where there is one
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - start
        output = result.stdout.strip() if result.returncode == 0 else f"FALHOU ({result.returncode}):\n{result.stderr[-2000:]}"
        print(f"== {script.name} ({elapsed:.0f} s)\n{output}\n", flush=True)
        sections.append(f"## {script.name}\n\n```text\n{output}\n```\n\n({elapsed:.0f} s)\n")
    header = [
        "# Resultados dos benchmarks",
        "",
        f"Gerado por `python bench/run_all.py` em {time.strftime('%Y-%m-%d %H:%M %Z')}.",
        "",
        f"- máquina: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {cpu_name()}",
        f"- Python {platform.python_version()}; {versions()}",
        "- cada razão compara duas medições da mesma execução; os valores absolutos dependem da máquina.",
        "",
    ]
    (HERE / "RESULTS.md").write_text("\n".join(header) + "\n".join(sections), encoding="utf-8")
    print(f"Escrito {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
