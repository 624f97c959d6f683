"""The command line: pt-PT help, errors without tracebacks, preflight's JSON and exit status."""

import json
import shutil
import subprocess

import pytest

from conftest import ROOT, run_cli
from farense_guide.cli import build_parser


@pytest.mark.parametrize("command", [[], ["preflight"], ["model"], ["chat"], ["data"], ["data", "validate"], ["train"], ["monitor"]])
def test_help_is_in_portuguese(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("utilização: farense-guide")
    assert "opções:" in result.stdout and "mostra esta ajuda e sai" in result.stdout
    assert "usage:" not in result.stdout and "show this help" not in result.stdout


def test_every_subcommand_has_help_text():
    import argparse

    def walk(parser, name):
        assert parser.description, name
        for action in parser._actions:
            assert action.help, (name, action.dest)
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")

    walk(build_parser(), "farense-guide")


def test_unknown_profile_is_a_clear_error():
    result = run_cli("preflight", "--profile", "nao-existe")
    assert result.returncode == 2
    assert "perfil 'nao-existe' desconhecido" in result.stderr and "smollm2" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_option_is_reported_in_portuguese():
    result = run_cli("chat", "--max-tokens", "muitos")
    assert result.returncode == 2 and "número inteiro inválido" in result.stderr


def test_preflight_json_and_exit_status(tmp_path):
    output = tmp_path / "preflight.json"
    result = run_cli("preflight", "--profile", "tiny", "--json", "--output", str(output))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == json.loads(output.read_text())
    keys = {c["key"] for c in report["checks"]}
    assert {"python", "system", "mlx", "memory", "disk_cache", "disk_runs", "model", "memory_estimate"} <= keys
    assert report["blocking"] == []
    assert report["memory_estimate"]["verdict"] == "cabe"


def test_preflight_blocks_a_profile_that_cannot_fit_on_this_cpu(tmp_path):
    # A 7B model dequantized to float32 for CPU training needs ~30 GB: more than this machine has.
    result = run_cli("preflight", "--profile", "m1-16gb", "--json", "--output", str(tmp_path / "p.json"))
    report = json.loads(result.stdout)
    if report["device"] == "gpu":
        pytest.skip("on a GPU the 7B profile is QLoRA and may fit")
    assert result.returncode == 1
    assert report["blocking"] == ["memory_estimate"]


def test_chat_answers_from_the_cli():
    # SmolLM2's own system prompt: the base model answers in English (the Farense one is for the tuned model)
    result = run_cli("chat", "--no-system", "What is the capital of France?", "--max-tokens", "30")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


@pytest.mark.skipif(shutil.which("nox") is None, reason="nox not installed")
def test_nox_lists_sessions_with_portuguese_docstrings():
    result = subprocess.run(["nox", "-l"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    for session in ("preflight", "tests", "all"):
        line = next(row for row in result.stdout.splitlines() if row.split()[1:2] == [session])
        assert " -> " in line, line
    assert "Verifica a máquina" in result.stdout


@pytest.mark.parametrize("option, key", [("--grad-accumulation", "grad_accumulation"), ("--batch-size", "batch_size"),
                                         ("--epochs", "epochs")])
def test_a_zero_that_would_crash_training_is_refused_with_the_key(tmp_path, option, key):
    result = run_cli("train", "--profile", "tiny", "--runs-dir", str(tmp_path), option, "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{key} tem de ser um inteiro maior ou igual a 1 (recebido 0)" in result.stderr
    assert not any(tmp_path.iterdir())


def test_training_names_the_first_broken_line_before_loading_the_model(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data, ignore=shutil.ignore_patterns("source", "stats", "*.md", "*.py"))
    lines = (data / "train.jsonl").read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4][:-3]  # cut the closing braces of line 5
    (data / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("train", "--profile", "tiny", "--runs-dir", str(tmp_path / "runs"), "--data", str(data))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{data / 'train.jsonl'}:5: JSON inválido" in result.stderr
    assert f"farense-guide data validate {data}" in result.stderr


def test_evaluate_refuses_a_run_without_a_trained_adapter(tmp_path):
    run = tmp_path / "vazio"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"name": "vazio", "status": "running", "profile": {"data": "data"}}))
    result = run_cli("evaluate", str(run))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"não há adaptador em {run / 'adapters'}" in result.stderr and f"train --resume {run}" in result.stderr
