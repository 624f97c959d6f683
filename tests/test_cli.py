"""The command line: pt-PT help, errors without tracebacks, preflight's JSON and exit status."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, run_cli
from farense_guide.cli import build_parser


def cli_main(capsys, *args) -> tuple[int, str, str]:
    """The CLI in this process (no re-run with OpenBLAS in a child): (exit status, stdout, stderr)."""
    from farense_guide import blas
    from farense_guide.cli import main

    os.environ[blas.CHILD_VAR] = "1"
    try:
        status = main(list(args))
    except SystemExit as stop:  # argparse's --help and usage errors
        status = stop.code
    finally:
        del os.environ[blas.CHILD_VAR]
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize("command", [[], ["preflight"], ["model"], ["chat"], ["data"], ["data", "validate"], ["train"], ["monitor"],
                                     ["evaluate"], ["report"], ["fragments"], ["pdf"], ["fuse"], ["export"]])
def test_help_is_in_portuguese(capsys, command):
    status, out, _ = cli_main(capsys, *command, "--help")
    assert status == 0
    assert out.startswith("utilização: farense-guide")
    assert "opções:" in out and "mostra esta ajuda e sai" in out
    assert "usage:" not in out and "show this help" not in out


def test_help_from_a_real_process_is_in_portuguese():
    result = run_cli("--help")
    assert result.returncode == 0 and result.stdout.startswith("utilização: farense-guide")


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


def test_bad_option_is_reported_in_portuguese(capsys):
    status, _, err = cli_main(capsys, "chat", "--max-tokens", "muitos")
    assert status == 2 and "farense-guide chat: erro: argumento --max-tokens: número inteiro inválido: 'muitos'" in err


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
def test_a_zero_that_would_crash_training_is_refused_with_the_key(capsys, tmp_path, option, key):
    status, _, err = cli_main(capsys, "train", "--profile", "tiny", "--runs-dir", str(tmp_path), option, "0")
    assert status == 2 and "Traceback" not in err
    assert f"{key} tem de ser um inteiro maior ou igual a 1 (recebido 0)" in err
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
    info = json.loads((ROOT / "runs" / "reference" / "run.json").read_text(encoding="utf-8"))  # a whole run.json: killed
    (run / "run.json").write_text(json.dumps({**info, "name": "vazio", "status": "running"}))  # before its first adapter
    result = run_cli("evaluate", str(run))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"não há adaptador em {run / 'adapters'}" in result.stderr and f"train --resume {run}" in result.stderr


def test_every_argparse_message_in_the_catalogue_is_one_argparse_still_uses():
    """If CPython rewords a message, its msgid leaves argparse's source and this test names it."""
    import argparse
    import inspect

    from farense_guide.cli import ARGPARSE_PT

    source = inspect.getsource(argparse)
    missing = [msgid for msgid in ARGPARSE_PT if repr(msgid)[1:-1] not in source and msgid not in source]
    assert missing == []


def test_argparse_errors_come_through_the_catalogue(capsys):
    from farense_guide.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["data", "clean"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("utilização: farense-guide data clean")
    assert "farense-guide data clean: erro: faltam argumentos obrigatórios: target, --output" in err


def test_train_help_lists_the_profile_keys_with_their_help():
    from farense_guide.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    text = subcommands.choices["train"].format_help()
    assert "lora.rank" in text and "taxa de aprendizagem máxima" in text
