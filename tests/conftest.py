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
