"""The PDF build against `mkdocs build` for the same chapters, in one run (median of 3, alternated).

    python bench/bench_pdf.py

Both run as the reader runs them, as commands in a subprocess, over the guide/_generated/ that
`nox -s docs` wrote (or from runs/reference / runs/demo-tiny when it is missing).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    return time.perf_counter() - start


def ensure_fragments() -> None:
    if (ROOT / "guide" / "_generated" / "values.json").exists():
        return
    for run in ("runs/reference", "runs/demo-tiny"):
        if (ROOT / run / "tables" / "training.md").exists():
            subprocess.run([sys.executable, "-m", "farense_guide", "fragments", "--run", run], cwd=ROOT, check=True)
            return
    sys.exit("sem guide/_generated/ nem um run avaliado: corra `nox -s docs` primeiro")


def main() -> None:
    ensure_fragments()
    with tempfile.TemporaryDirectory() as scratch:
        pdf = [sys.executable, "-m", "farense_guide", "pdf", "--force", "--output", str(Path(scratch) / "guia.pdf")]
        site = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(Path(scratch) / "site")]
        pdf_times, site_times = [], []
        for _ in range(REPEATS):
            pdf_times.append(timed(pdf))
            site_times.append(timed(site))
    pdf_s, site_s = statistics.median(pdf_times), statistics.median(site_times)
    print(f"PDF (reportlab) contra site (mkdocs build), os mesmos capítulos, mediana de {REPEATS}:")
    print(f"  farense-guide pdf: {pdf_s:.1f} s · mkdocs build: {site_s:.1f} s · razão PDF/site {pdf_s / site_s:.2f}x")


if __name__ == "__main__":
    main()
