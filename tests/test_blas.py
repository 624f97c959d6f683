"""OpenBLAS is preloaded into a child process on Linux, never into the caller."""

import os
import subprocess
import sys

import pytest

from farense_guide import blas

needs_openblas = pytest.mark.skipif(blas.find_openblas() is None, reason="libopenblas0-pthread not installed")


def test_env_is_a_copy_and_the_callers_env_is_untouched():
    before = dict(os.environ)
    env = blas.openblas_env({"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert dict(os.environ) == before


@needs_openblas
def test_openblas_env_keeps_existing_preloads():
    env = blas.openblas_env({"LD_PRELOAD": "/lib/other.so"})
    assert env["LD_PRELOAD"] == f"{blas.find_openblas()}:/lib/other.so"
    assert blas.openblas_env({blas.DISABLE_VAR: "1"}).get("LD_PRELOAD") is None


@needs_openblas
def test_child_process_maps_openblas():
    code = "import mlx.core as mx; mx.eval(mx.ones((4, 4)) @ mx.ones((4, 4))); from farense_guide.blas import blas_in_use; print(blas_in_use())"
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    without = subprocess.run([sys.executable, "-c", code], env=plain, capture_output=True, text=True)
    with_openblas = subprocess.run([sys.executable, "-c", code], env=blas.openblas_env(plain), capture_output=True, text=True)
    assert without.stdout.strip() == "reference"
    assert with_openblas.stdout.strip() == "openblas"


@needs_openblas
def test_cli_says_so_in_one_line_and_reports_it(tmp_path):
    plain = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", blas.CHILD_VAR)}
    result = subprocess.run(
        [sys.executable, "-m", "farense_guide", "preflight", "--profile", "tiny", "--json", "--output", str(tmp_path / "p.json")],
        env=plain, capture_output=True, text=True,
    )
    assert result.stderr.count("BLAS: a usar OpenBLAS") == 1
    assert '"value": "OpenBLAS' in result.stdout
