"""The data commands against a hostile user: every case ends in a pt-PT message naming the file (and the
line where there is one), a non-zero exit where something is wrong, and inputs byte-identical afterwards."""

import functools
import hashlib
import json
import os
import re
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, run_cli
from farense_guide import cli

GOOD = json.dumps({"messages": [{"role": "user", "content": "De onde é o Farense?"},
                                {"role": "assistant", "content": "O Farense é de Faro."}]}, ensure_ascii=False)
OTHER = json.dumps({"messages": [{"role": "user", "content": "Quem fundou o Farense?"},
                                 {"role": "assistant", "content": "Um grupo de sócios, em 1910."}]}, ensure_ascii=False)
SURROGATE = '{"messages": [{"role": "user", "content": "Olá \\ud800"}, {"role": "assistant", "content": "Olá."}]}'
DEEP = "[" * 200_000 + "]" * 200_000
BIG_INTEGER = '{"text": "Farense", "number": ' + "9" * 5000 + "}"
ENGLISH = ("Expecting", "Unterminated", "Invalid", "Extra data", "delimiter", "column")


def lines(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode("utf-8")


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every regular file under `folder` (FIFOs and devices by kind only)."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not path.is_dir():
            hashes[str(path)] = "special"
    return hashes


@contextmanager
def time_limit(seconds: int):
    """A hang (a FIFO read, say) fails the test instead of blocking it."""
    def expired(*_):
        raise TimeoutError(f"mais de {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(capsys, *argv) -> tuple[int, str, str]:
    """`farense-guide ARGV` in-process: (exit status, stdout, stderr)."""
    with time_limit(60):
        try:
            status = cli.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def cached_tokenizer(monkeypatch):
    """`data stats` always counts tokens: load each tokenizer once for the whole module."""
    from farense_guide import models

    monkeypatch.setattr(models, "load_tokenizer", cached_load_tokenizer)


@functools.cache
def cached_load_tokenizer(spec):
    from transformers import AutoTokenizer

    from farense_guide.models import resolve_model

    return AutoTokenizer.from_pretrained(str(resolve_model(spec)))


def data_folder(root: Path, **splits: bytes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in splits.items():
        (root / f"{name}.jsonl").write_bytes(content)
    return root


def four_commands(folder: Path, out: Path, split_file: bool = True) -> dict[str, list]:
    """validate, clean, split (of train.jsonl, or of the folder) and stats of `folder`, writing under `out`."""
    return {
        "validate": ["data", "validate", folder, "--no-tokens"],
        "clean": ["data", "clean", folder, "--output", out / "clean", "--no-tokens"],
        "split": ["data", "split", folder / "train.jsonl" if split_file else folder, "--output", out / "split"],
        "stats": ["data", "stats", folder, "--output", out / "stats", "--model", "tiny"],
    }


# ── 1. output folders: refused when not empty, replaced whole with --force ────────────────────────


@pytest.mark.parametrize("command", ["clean", "split"])
def test_a_non_empty_output_folder_is_refused_without_force(tmp_path, capsys, command):
    source = data_folder(tmp_path / "in", train=lines(GOOD, OTHER))
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.jsonl").write_text("o meu trabalho\n")
    before = snapshot(tmp_path)
    status, _, err = run(capsys, "data", command, source / "train.jsonl", "--output", out, *(["--no-tokens"] if command == "clean" else []))
    assert status == 2
    assert f"erro: {out}: a pasta de saída já existe e não está vazia" in err and "--force" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["clean", "split"])
def test_force_replaces_the_output_folder_whole(tmp_path, capsys, command):
    source = data_folder(tmp_path / "in", train=lines(GOOD, OTHER))
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.jsonl").write_text("de uma corrida anterior\n")
    before = snapshot(source)
    status, _, err = run(capsys, "data", command, source / "train.jsonl", "--output", out, "--force",
                         *(["--no-tokens"] if command == "clean" else []))
    assert status == 0, err
    assert not (out / "stale.jsonl").exists() and (out / "train.jsonl").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no temporary sibling left behind
    assert snapshot(source) == before


def test_force_never_replaces_the_input_nor_a_folder_with_subfolders(tmp_path, capsys):
    source = data_folder(tmp_path / "in", train=lines(GOOD, OTHER))
    before = snapshot(tmp_path)
    for out in (source, tmp_path):
        status, _, err = run(capsys, "data", "clean", source, "--output", out, "--force", "--no-tokens")
        assert status == 2 and f"erro: {out}: a pasta de saída não pode ser a de entrada" in err
    elsewhere = tmp_path / "home"
    (elsewhere / "documentos").mkdir(parents=True)
    (elsewhere / "notas.txt").write_text("importante\n")
    before = snapshot(tmp_path)
    status, _, err = run(capsys, "data", "split", source / "train.jsonl", "--output", elsewhere, "--force")
    assert status == 2 and f"erro: {elsewhere}: tem subpastas" in err
    assert snapshot(tmp_path) == before


# ── 5. a lone surrogate in clean; all or nothing ─────────────────────────────────────────────────


def test_clean_drops_a_lone_surrogate_and_writes_everything(tmp_path, capsys):
    source = data_folder(tmp_path / "in", train=lines(GOOD, SURROGATE, OTHER))
    before = snapshot(source)
    out = tmp_path / "out"
    status, _, err = run(capsys, "data", "clean", source, "--output", out, "--no-tokens")
    assert status == 0, err
    assert (out / "train.jsonl").read_text(encoding="utf-8").splitlines() == [GOOD, OTHER]
    report = json.loads((out / "clean_report.json").read_text(encoding="utf-8"))
    [change] = report["changes"]
    assert change["path"] == str(source / "train.jsonl") and change["line"] == 2 and "substituto isolado U+D800" in change["reason"]
    assert "substituto isolado" in (out / "clean_report.md").read_text(encoding="utf-8")
    assert snapshot(source) == before


def test_clean_writes_all_or_nothing(tmp_path, monkeypatch):
    from farense_guide.data import clean

    source = data_folder(tmp_path / "in", train=lines(GOOD, OTHER))

    def crash(*_):
        raise OSError("disco cheio")

    monkeypatch.setattr(clean, "write_clean_report", crash)  # after the data files, before the report
    with pytest.raises(OSError):
        clean.clean(source, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no half-written output, no temporary folder


# ── 6. a data folder without train.jsonl ─────────────────────────────────────────────────────────


def test_validate_refuses_an_empty_folder(tmp_path, capsys):
    status, out, _ = run(capsys, "data", "validate", tmp_path, "--no-tokens")
    assert status == 1 and f"{tmp_path / 'train.jsonl'}: não existe (a pasta não tem ficheiros .jsonl" in out
    assert "Sem problemas" not in out


def test_validate_refuses_a_data_folder_without_train(tmp_path, capsys):
    folder = data_folder(tmp_path, valid=lines(GOOD), test=lines(OTHER))
    before = snapshot(folder)
    status, out, _ = run(capsys, "data", "validate", folder, "--no-tokens")
    assert status == 1 and f"{folder / 'train.jsonl'}: não existe" in out and "Sem problemas" not in out
    assert snapshot(folder) == before


def test_a_single_file_still_validates_alone(tmp_path, capsys):
    folder = data_folder(tmp_path, valid=lines(GOOD))
    for target in (folder, folder / "valid.jsonl"):
        status, out, _ = run(capsys, "data", "validate", target, "--no-tokens")
        assert status == 0 and "Sem problemas." in out


# ── 7. lone surrogates in validation, with and without tokens ────────────────────────────────────


@pytest.mark.parametrize("tokens", [["--no-tokens"], ["--model", "tiny"]], ids=["no-tokens", "tokens"])
def test_validate_names_a_lone_surrogate(tmp_path, capsys, tokens):
    folder = data_folder(tmp_path, train=lines(GOOD, SURROGATE, '{"text\\udc80": "chave estragada"}'))
    before = snapshot(folder)
    status, out, err = run(capsys, "data", "validate", folder, *tokens)
    assert status == 1, err
    assert f"{folder / 'train.jsonl'}:2: texto com um substituto isolado U+D800" in out
    assert f"{folder / 'train.jsonl'}:3: texto com um substituto isolado U+DC80" in out
    assert snapshot(folder) == before


# ── 8 and 9. nesting, huge integers, FIFOs, folders and size: the four readers ──────────────────


@pytest.mark.parametrize("bad, words", [(DEEP, "JSON aninhado a mais de 64 níveis"),
                                        (BIG_INTEGER, "número inteiro com 5000 algarismos")], ids=["deep", "big-integer"])
def test_every_reader_names_a_hostile_line(tmp_path, capsys, cached_tokenizer, bad, words):
    folder = data_folder(tmp_path / "in", train=lines(GOOD, bad))
    train = folder / "train.jsonl"
    before = snapshot(folder)
    for name, argv in four_commands(folder, tmp_path).items():
        status, out, err = run(capsys, *argv)
        if name == "clean":  # cleaning removes the line and says so
            assert status == 0, err
            [change] = json.loads((tmp_path / "clean" / "clean_report.json").read_text())["changes"]
            assert (change["path"], change["line"]) == (str(train), 2) and words in change["reason"]
        else:
            assert status == (1 if name == "validate" else 2), (name, err)
            assert f"{train}:2: {words}" in out, (name, out)
            assert name == "validate" or err.startswith("erro: há problemas nos dados")
        assert "Traceback" not in err
    assert not (tmp_path / "split").exists() and not (tmp_path / "stats").exists()
    assert snapshot(folder) == before


def test_clean_of_only_hostile_lines_fails_and_writes_only_the_report(tmp_path, capsys):
    folder = data_folder(tmp_path / "in", train=lines(DEEP, BIG_INTEGER))
    before = snapshot(folder)
    out = tmp_path / "out"
    status, _, err = run(capsys, "data", "clean", folder, "--output", out, "--no-tokens")
    assert status == 2 and f"erro: {folder / 'train.jsonl'}: nenhum exemplo sobreviveu à limpeza" in err
    assert sorted(p.name for p in out.iterdir()) == ["clean_report.json", "clean_report.md"]
    assert [c["line"] for c in json.loads((out / "clean_report.json").read_text())["changes"]] == [1, 2]
    assert snapshot(folder) == before


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_train_jsonl_that_is_not_a_file_is_named_and_never_read(tmp_path, capsys, cached_tokenizer, kind):
    folder = data_folder(tmp_path / "in", valid=lines(GOOD))
    train = folder / "train.jsonl"
    if kind == "fifo":
        os.mkfifo(train)
        what = "é um FIFO"
    else:
        train.mkdir()
        what = "é uma pasta"
    before = snapshot(folder)
    for name, argv in four_commands(folder, tmp_path, split_file=False).items():
        status, out, err = run(capsys, *argv)
        assert status in (1, 2) and "Traceback" not in err, (name, err)
        message = f"{train}: não é um ficheiro normal, {what}"
        assert message in (err if name == "clean" else out), (name, out, err)
    assert snapshot(folder) == before


def test_the_cli_does_not_hang_on_a_fifo(tmp_path):
    folder = data_folder(tmp_path / "in", valid=lines(GOOD))
    os.mkfifo(folder / "train.jsonl")
    for argv in (["validate", folder, "--no-tokens"], ["split", folder / "train.jsonl", "--output", tmp_path / "s"]):
        result = run_cli("data", *map(str, argv), timeout=30)
        assert result.returncode in (1, 2) and "é um FIFO" in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


def test_a_file_over_the_size_limit_is_not_read(tmp_path, capsys, monkeypatch):
    from farense_guide.data import jsonl

    monkeypatch.setattr(jsonl, "MAX_FILE_BYTES", 100)
    folder = data_folder(tmp_path, train=lines(GOOD, OTHER))
    status, out, _ = run(capsys, "data", "validate", folder, "--no-tokens")
    assert status == 1 and f"{folder / 'train.jsonl'}: ficheiro com " in out and "acima do limite" in out


# ── 11. text from the data in clean_report.md ────────────────────────────────────────────────────


def test_clean_report_escapes_text_from_the_data(tmp_path, capsys):
    hostile_role = "<script>alert(1)</script> | `código` & \n| nova linha |"
    row = json.dumps({"messages": [{"role": hostile_role, "content": "q"}, {"role": "assistant", "content": "a"}]})
    folder = data_folder(tmp_path / "in", train=lines(GOOD, row))
    out = tmp_path / "out"
    status, _, err = run(capsys, "data", "clean", folder, "--output", out, "--no-tokens")
    assert status == 0, err
    report = (out / "clean_report.md").read_text(encoding="utf-8")
    assert "<script>" not in report and "&lt;script&gt;" in report and "\\`código\\`" in report and "&amp;" in report
    changes = [line for line in report.splitlines() if line.startswith("| ") and str(folder) in line]
    assert len(changes) == 1  # the newline did not start a new row
    assert len(re.findall(r"(?<!\\)\|", changes[0])) == 5  # four cells: no pipe from the data splits one


# ── 12. exit statuses and pt-PT JSON errors ──────────────────────────────────────────────────────


def test_stats_fails_on_data_with_problems(tmp_path, capsys, cached_tokenizer):
    folder = data_folder(tmp_path / "in", train=lines(GOOD, "{oops"))
    out = tmp_path / "stats"
    status, stdout, err = run(capsys, "data", "stats", folder, "--output", out, "--model", "tiny")
    assert status == 2 and f"{folder / 'train.jsonl'}:2: JSON inválido na coluna 2" in stdout
    assert err.startswith("erro: há problemas nos dados") and not out.exists()


@pytest.mark.parametrize("line, column, words", [
    ('{"text": "a', 10, "as aspas abertas nesta coluna nunca fecham"),
    ('{"text": }', 10, "falta um valor"),
    ('{text: "a"}', 2, "esperava o nome de uma chave entre aspas duplas"),
    ('{"text" "a"}', 9, "faltam os dois pontos"),
    ('{"text": "a" "b": 1}', 14, "falta uma vírgula"),
    ('{"text": "a\tb"}', 12, "carácter de controlo dentro de um texto"),
    ('{"text": "a\\qb"}', 12, "escape inválido"),
    ('{"text": "a\\u12"}', 13, "escape \\uXXXX inválido"),
    ('{"text": "a"} {"text": "b"}', 15, "há mais conteúdo depois do fim do JSON"),
    ('{"text": NaN}', 10, "NaN não é um valor JSON"),
])
def test_json_errors_are_in_portuguese_with_line_and_column(tmp_path, capsys, line, column, words):
    train = data_folder(tmp_path, train=lines(GOOD, line)) / "train.jsonl"
    status, out, _ = run(capsys, "data", "validate", train, "--no-tokens")
    [problem] = [row for row in out.splitlines() if row.startswith(str(train))]
    assert status == 1 and problem.startswith(f"{train}:2: JSON inválido") and words in problem, problem
    assert words.startswith("NaN") or f"na coluna {column}:" in problem, problem
    assert not any(word in problem for word in ENGLISH), problem


def test_the_shipped_data_still_splits_and_cleans(tmp_path, capsys):
    status, _, err = run(capsys, "data", "clean", ROOT / "data", "--output", tmp_path / "clean", "--no-tokens")
    assert status == 0, err
    status, out, err = run(capsys, "data", "split", tmp_path / "clean" / "train.jsonl", "--output", tmp_path / "split")
    assert status == 0 and "train.jsonl: " in out, err


# ── fuzz: arbitrary bytes through the four readers ───────────────────────────────────────────────

FRAGMENTS = ['{', '}', '[', ']', '"', ',', ':', '\\', '\\ud800', '\\u00e9', '"messages"', '"role"', '"content"', '"user"',
             '"assistant"', '"text"', '"prompt"', '"completion"', '"question"', '"answer"', '"Farense"', '1', '-0', '1e999',
             '9' * 30, 'null', 'true', 'NaN', ' ', '\n', '\r\n', '\t', '\x00', '\u2028', 'é', '\ufeff', '|', '<b>']
hostile_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from([GOOD, OTHER, SURROGATE, '{"text": "Olá"}', "{oops", "", "[" * 100]), max_size=6)
      .map(lambda rows: lines(*rows)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=hostile_bytes)
def test_fuzz_the_readers_never_crash_hang_or_write_the_input(tmp_path_factory, capsys, cached_tokenizer, content):
    root = tmp_path_factory.mktemp("fuzz")
    folder = data_folder(root / "in", train=content, valid=content, test=content)
    before = snapshot(folder)
    for name, argv in four_commands(folder, root).items():
        status, _, err = run(capsys, *argv)
        assert status in (0, 1, 2), (name, status, err)
        assert status != 2 or err.startswith("erro: "), (name, err)
        assert "Traceback" not in err
    assert snapshot(folder) == before
    shutil.rmtree(root)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00", lines(DEEP), lines(BIG_INTEGER), lines(SURROGATE), lines(GOOD, OTHER)],
                         ids=["binary", "deep", "big-integer", "surrogate", "good"])
def test_the_cli_path_exits_cleanly(tmp_path, content):
    folder = data_folder(tmp_path / "in", train=content, valid=content, test=content)
    before = snapshot(folder)
    for argv in (["validate", folder, "--no-tokens"], ["clean", folder, "--output", tmp_path / "c", "--no-tokens"],
                 ["split", folder / "train.jsonl", "--output", tmp_path / "s"]):
        result = run_cli("data", *map(str, argv), timeout=60)
        assert result.returncode in (0, 1, 2) and "Traceback" not in result.stderr, result.stderr
        assert result.returncode != 2 or result.stderr.startswith("erro: "), result.stderr
    assert snapshot(folder) == before
