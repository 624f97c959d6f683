"""A fast BLAS is preloaded into a child process on Linux, never into the caller; on x86-64 the project brings MKL."""

import json
import os
import platform
import subprocess
import sys

import pytest

from farense_guide import blas

linux_x86 = pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64", reason="MKL's wheel is for x86-64 Linux")
MAPPED = "import mlx.core as mx; mx.eval(mx.ones((4, 4)) @ mx.ones((4, 4))); from farense_guide.blas import blas_in_use; print(blas_in_use())"


def plain_env():
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", blas.CHILD_VAR, blas.CHOICE_VAR)}


def test_env_is_a_copy_and_the_callers_env_is_untouched():
    before = dict(os.environ)
    env = blas.blas_env({"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert dict(os.environ) == before


@linux_x86
def test_the_project_installs_mkl_and_prefers_it():
    """pyproject.toml asks for the `mkl` wheel on x86-64 Linux: it is in this environment, without apt or root."""
    assert blas.pip_mkl() is not None
    assert blas.find_fast_blas("mkl").path == blas.pip_mkl()
    if blas.debian_openblas() is None:  # a newcomer's machine
        assert blas.find_fast_blas("").name == "mkl"
    assert "sudo" not in blas.install_hint()


@linux_x86
def test_of_two_fast_blas_the_faster_on_this_cpu_is_chosen_once_and_remembered(tmp_path, monkeypatch):
    """A library that does not load leaves MLX's reference BLAS (~3 GFLOP/s): MKL wins, and the choice is cached."""
    monkeypatch.setenv("FARENSE_CACHE", str(tmp_path))
    mkl = blas.Blas("mkl", "MKL (PyPI)", blas.pip_mkl())
    missing = blas.Blas("openblas", "OpenBLAS (Debian)", tmp_path / "libblas.so.3")
    assert blas.faster([missing, mkl]) == mkl
    saved = json.loads((tmp_path / "blas-choice.json").read_text())
    assert saved["choice"] == "mkl" and saved["gflops"]["mkl"] > 5 * saved["gflops"]["openblas"]

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(blas.subprocess, "run", no_timing)
    assert blas.faster([missing, mkl]) == mkl


@linux_x86
def test_env_keeps_existing_preloads_and_reference_preloads_nothing():
    env = blas.blas_env({"LD_PRELOAD": "/lib/other.so"})
    assert env["LD_PRELOAD"] == f"{blas.find_fast_blas('').path}:/lib/other.so"
    assert blas.blas_env({blas.CHOICE_VAR: "reference"}).get("LD_PRELOAD") is None
    assert blas.find_fast_blas("no-such-blas") is None


@pytest.mark.parametrize("choice", ["mkl", "openblas"])
def test_child_process_maps_the_chosen_blas(choice):
    if blas.find_fast_blas(choice) is None:
        pytest.skip(f"{choice} is not on this machine")
    without = subprocess.run([sys.executable, "-c", MAPPED], env=plain_env(), capture_output=True, text=True)
    with_fast = subprocess.run([sys.executable, "-c", MAPPED], env=blas.blas_env(plain_env(), choice), capture_output=True, text=True)
    assert without.stdout.strip() == "reference", without.stderr
    assert with_fast.stdout.strip() == choice, with_fast.stderr


@linux_x86
def test_cli_says_so_in_one_line_and_preflight_reports_the_blas_and_its_speed(tmp_path):
    output = tmp_path / "p.json"
    result = subprocess.run(
        [sys.executable, "-m", "farense_guide", "preflight", "--profile", "tiny", "--json", "--output", str(output)],
        env=plain_env(), capture_output=True, text=True,
    )
    assert result.stderr.count("BLAS: a usar MKL") == 1, result.stderr
    check = next(c for c in json.loads(output.read_text())["checks"] if c["key"] == "blas")
    assert check["value"].startswith("MKL (matmul float32: ") and check["status"] == "ok", check
    assert float(check["value"].split(": ")[1].split()[0]) > 20  # GFLOP/s; the reference BLAS gives about 3


@linux_x86
def test_preflight_with_the_reference_blas_warns_with_a_hint_that_needs_no_root(tmp_path):
    output = tmp_path / "p.json"
    result = subprocess.run(
        [sys.executable, "-m", "farense_guide", "preflight", "--profile", "tiny", "--json", "--output", str(output)],
        env={**plain_env(), blas.CHOICE_VAR: "reference"}, capture_output=True, text=True,
    )
    assert "BLAS: a usar" not in result.stderr
    check = next(c for c in json.loads(output.read_text())["checks"] if c["key"] == "blas")
    assert check["status"] == "aviso" and "GFLOP/s" in check["value"], check
    assert "pip install mkl" in check["hint"] and "sudo" not in check["hint"]
