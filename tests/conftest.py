import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session converts models into its own cache folder."""
    cache = tmp_path_factory.mktemp("farense-cache")
    os.environ["FARENSE_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return cache


@pytest.fixture(scope="session")
def smollm2_path(isolated_cache):
    from farense_guide.models import embedded_model

    return embedded_model()


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    from mlx_lm import load

    return load(str(smollm2_path))


def run_cli(*args, env=None, **kwargs):
    """`python -m farense_guide ARGS` in a subprocess, text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "farense_guide", *args],
        capture_output=True, text=True, cwd=kwargs.pop("cwd", ROOT),
        env={**os.environ, **(env or {})}, timeout=kwargs.pop("timeout", 300), **kwargs,
    )


@pytest.fixture(scope="session")
def evaluated_run(tmp_path_factory):
    """Two epochs of the tiny model on a small slice of the Farense data, evaluated and reported (evaluation and site tests)."""
    root = tmp_path_factory.mktemp("eval")
    data = root / "data"
    data.mkdir()
    for split, count in (("train", 8), ("valid", 6), ("test", 6)):
        lines = (ROOT / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    trained = run_cli("train", "--profile", "tiny", "--runs-dir", str(root), "--run-name", "ev", "--epochs", "2", "--data", str(data),
                      "--set", "max_steps=null", "--set", "steps_per_eval=2", "--set", "steps_per_report=1")
    assert trained.returncode == 0, trained.stderr
    evaluated = run_cli("evaluate", str(root / "ev"), "--max-tokens", "8")
    assert evaluated.returncode == 0, evaluated.stderr
    assert (root / "ev" / "evaluation" / "EVALUATION_REPORT.md").exists()  # evaluate writes the report too
    reported = run_cli("report", str(root / "ev"))
    assert reported.returncode == 0 and "nada a refazer" in reported.stdout, reported.stdout
    return root / "ev", evaluated.stdout


@pytest.fixture(scope="session")
def site_project(tmp_path_factory, evaluated_run):
    """A copy of the project whose guide/_generated (values, tables, figures, PDF) comes from the tiny evaluated run."""
    from farense_guide.book.snippets import scratch_copy

    copy = scratch_copy(tmp_path_factory.mktemp("site-project"))
    run, _ = evaluated_run
    made = run_cli("pdf", "--run", str(run), cwd=copy)
    assert made.returncode == 0, made.stderr
    return copy
