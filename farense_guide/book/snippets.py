"""Run every file the guide includes from snippets/, and the notebook, the way a reader would.

`nox -s snippets` (or `python -m farense_guide.book.snippets`) copies the project into a scratch folder,
sets FARENSE_PROFILE=tiny so every command picks the tiny model, then runs snippets/*.sh with bash
and snippets/*.py with Python in name order (the chapter number leads, so a later chapter finds
the run an earlier one made), then executes guide/notebook.ipynb. It stops at the first failure
and names the snippet. The snippets in SEPARATE, which need nothing from the others and nothing of
theirs is needed, run beside them in a copy of their own, to shorten the whole.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from farense_guide import blas
from farense_guide.runs import RunFolder

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = Path("guide/notebook.ipynb")
SKIP = shutil.ignore_patterns(".git", ".venv", ".nox", "site", "runs", "build", "__pycache__", "*.egg-info", ".pytest_cache",
                              "_generated")


def snippet_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (root / "snippets").iterdir() if p.suffix in (".sh", ".py"))


COMMITTED_RUNS = ("reference", "reference-cuda")  # what a fresh clone has under runs/
RUN_SKIP = shutil.ignore_patterns("checkpoints", "fused", "fused-*", "*.gguf")
STUDY = "study"  # the recipe study (chapter 14): its table, figure and comparisons, and what redoes them
# What neither the chapter's fragments nor `farense-guide study` and `compare` read: each run's figures, tables, logs,
# readable reports and the evaluation's cache of variants (run.json, metrics.jsonl and evaluation/ are what they need).
STUDY_SKIP = shutil.ignore_patterns("checkpoints", "adapters", "figures", "tables", "variants", "*.log", "EVALUATION_REPORT.md",
                                    "evaluation_summary.csv", ".report-stamp")


def scratch_copy(destination: Path) -> Path:
    """The project as a fresh clone would have it: sources, the committed runs once they are evaluated, and the study."""
    shutil.copytree(ROOT, destination, ignore=SKIP, dirs_exist_ok=True)
    (destination / "runs").mkdir(exist_ok=True)
    for name in COMMITTED_RUNS:
        run = RunFolder(ROOT / "runs" / name)
        if run.evaluation_report.exists():
            shutil.copytree(run.path, destination / "runs" / name, ignore=RUN_SKIP, dirs_exist_ok=True)
    if (ROOT / "runs" / STUDY).is_dir():
        shutil.copytree(ROOT / "runs" / STUDY, destination / "runs" / STUDY, ignore=STUDY_SKIP, dirs_exist_ok=True)
    return destination


def snippet_env(profile: str) -> dict[str, str]:
    env = blas.blas_env(dict(os.environ))  # Python snippets import MLX directly
    env.update({"FARENSE_PROFILE": profile, "PYTHONUNBUFFERED": "1", "TRANSFORMERS_VERBOSITY": "error"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def command_for(snippet: Path) -> list[str]:
    return ["bash", "-euo", "pipefail", str(snippet)] if snippet.suffix == ".sh" else [sys.executable, str(snippet)]


def run_notebook(path: Path, workdir: Path, env: dict[str, str], timeout: int) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# Snippets that build their own environment and that no later snippet needs: each runs beside the others, in its own
# copy of the project (03_instalar makes a virtual environment and runs `nox -s all`, minutes spent installing).
SEPARATE = ("03_instalar.sh",)


@dataclass
class Separate:
    """A snippet running beside the others: its process, its copy of the project and the log of its output."""

    name: Path
    process: subprocess.Popen
    log: Path
    began: float

    def failed(self) -> bool:
        return self.process.poll() not in (None, 0)

    def finish(self, timeout: int) -> bool:
        """Wait for it, print what it printed, and say whether it passed."""
        print(f"── {self.name} (ao lado dos outros, noutra cópia do projeto)", flush=True)
        try:
            code = self.process.wait(timeout=max(1, timeout - (time.perf_counter() - self.began)))
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = "tempo esgotado"
        print(self.log.read_text(errors="replace"), end="", flush=True)
        if code != 0:
            print(f"erro: o snippet {self.name} falhou (código {code}).", file=sys.stderr)
            return False
        print(f"   ok ({time.perf_counter() - self.began:.0f} s)", flush=True)
        return True


def start_separately(snippet: Path, workdir: Path, env: dict[str, str]) -> Separate:
    """Run `snippet` in a temporary copy of `workdir` made now, before any other snippet changes it; output to a log."""
    copy = Path(tempfile.mkdtemp(prefix=f"farense-snippets-{snippet.stem}-"))
    shutil.copytree(workdir, copy, dirs_exist_ok=True)
    log = copy / f"{snippet.stem}.log"
    with log.open("w") as output:
        process = subprocess.Popen(command_for(copy / snippet.relative_to(workdir)), cwd=copy, env=env, stdout=output, stderr=subprocess.STDOUT)
    return Separate(snippet.relative_to(workdir), process, log, time.perf_counter())


def run_all(workdir: Path, profile: str = "tiny", only: str | None = None, start: str | None = None, timeout: int = 900) -> int:
    env = snippet_env(profile)
    snippets = [s for s in snippet_files(workdir) if (only is None or only in s.name) and (start is None or s.name >= start)]
    separate = [start_separately(s, workdir, env) for s in snippets if s.name in SEPARATE]
    try:
        for snippet in (s for s in snippets if s.name not in SEPARATE):
            name = snippet.relative_to(workdir)
            print(f"── {name}", flush=True)
            began = time.perf_counter()
            result = subprocess.run(command_for(snippet), cwd=workdir, env=env, timeout=timeout)
            if result.returncode != 0:
                print(f"erro: o snippet {name} falhou (código {result.returncode}).", file=sys.stderr)
                return 1
            print(f"   ok ({time.perf_counter() - began:.0f} s)", flush=True)
            if any(lane.failed() for lane in separate):
                break
        if not all([lane.finish(timeout) for lane in separate]):
            return 1
    finally:
        for lane in separate:
            if lane.process.poll() is None:
                lane.process.kill()
                lane.process.wait()
            shutil.rmtree(lane.log.parent, ignore_errors=True)
    if only is None or only in NOTEBOOK.name:
        print(f"── {NOTEBOOK}", flush=True)
        began = time.perf_counter()
        try:
            run_notebook(workdir / NOTEBOOK, workdir, env, timeout)
        except Exception as exc:  # nbclient raises CellExecutionError with the cell and its traceback
            print(f"erro: o caderno {NOTEBOOK} falhou:\n{exc}", file=sys.stderr)
            return 1
        print(f"   ok ({time.perf_counter() - began:.0f} s)", flush=True)
    print(f"{len(snippets)} snippets e o caderno correram sem erros (perfil {profile}).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m farense_guide.book.snippets",
                                     description="Corre todos os snippets do guia e o caderno, por ordem, numa cópia do projeto.")
    parser.add_argument("--profile", default="tiny", help="perfil a usar (FARENSE_PROFILE); por omissão: tiny")
    parser.add_argument("--only", help="corre só os snippets cujo nome contém este texto")
    parser.add_argument("--from", dest="start", metavar="NOME", help="começa neste snippet (p. ex. 11_), saltando os anteriores")
    parser.add_argument("--keep", type=Path, help="usa esta pasta como cópia de trabalho e não a apaga (para retomar com --from)")
    args = parser.parse_args(argv)
    if args.keep:
        return run_all(scratch_copy(args.keep), args.profile, args.only, args.start)
    with tempfile.TemporaryDirectory(prefix="farense-snippets-") as scratch:
        return run_all(scratch_copy(Path(scratch)), args.profile, args.only, args.start)


if __name__ == "__main__":
    sys.exit(main())
