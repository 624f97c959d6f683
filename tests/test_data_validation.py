"""Validation and cleaning of JSONL data: every kind of bad input gets its own message."""

import json

import pytest

from farense_guide import cli
from farense_guide.data.validate import validate

SYSTEM = {"role": "system", "content": "És o assistente do Farense."}


def chat(question, answer="O Farense é de Faro.", system=True):
    messages = ([SYSTEM] if system else []) + [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return json.dumps({"messages": messages}, ensure_ascii=False)


def messages(*pairs):
    """A chat record from (role, content) pairs, as one JSON line."""
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in pairs]}, ensure_ascii=False)


def lines(*rows):
    return ("\n".join(rows) + "\n").encode("utf-8")


GOOD = chat("De onde é o Farense?")
BAD_INPUTS = {
    # name: (train.jsonl bytes, expected code, expected line, words in the message)
    "invalid_json": (lines(GOOD, '{"messages": [}'), "invalid_json", 2, "JSON inválido"),
    "invalid_utf8": (lines(GOOD).replace(b"Farense?", b"Farense\xe9?"), "invalid_utf8", 1, "não é UTF-8 válido"),
    "bom": (b"\xef\xbb\xbf" + lines(GOOD), "bom", 1, "BOM"),
    "empty_line": (lines(GOOD, "", chat("Quem fundou o Farense?")), "empty_line", 2, "linha vazia no meio"),
    "trailing_empty_line": (lines(GOOD, ""), "empty_line", 2, "linha vazia no fim"),
    "not_object": (lines(GOOD, '["pergunta", "resposta"]'), "not_object", 2, "objeto JSON"),
    "missing_keys": (lines(GOOD, '{"pergunta": "x", "resposta": "y"}'), "missing_keys", 2, "faltam chaves"),
    "message_without_content": (
        lines(GOOD, '{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}'), "missing_keys", 2, "falta «content»"
    ),
    "unknown_role": (lines(GOOD, messages(("utilizador", "q"), ("assistant", "a"))), "unknown_role", 2, "papel desconhecido «utilizador»"),
    "assistant_first": (lines(GOOD, messages(("assistant", "a"), ("user", "q"))), "role_order", 2, "fora de ordem"),
    "ends_with_user": (lines(GOOD, '{"messages": [{"role": "user", "content": "q"}]}'), "role_order", 2, "a terminar em assistant"),
    "system_in_the_middle": (lines(GOOD, messages(("user", "q"), ("system", "s"), ("assistant", "a"))), "role_order", 2, "fora de ordem"),
    "empty_content": (lines(GOOD, chat("")), "empty_content", 2, "conteúdo vazio"),
    "whitespace_content": (lines(GOOD, chat("Quem?", answer="  \n ")), "empty_content", 2, "só com espaços"),
    "control_character": (lines(GOOD, chat("Quem\u0007 fundou?")), "control_character", 2, "U+0007"),
    "content_not_text": (lines(GOOD, messages(("user", 42), ("assistant", "a"))), "not_text", 2, "tem de ser texto"),
    "messages_not_list": (lines(GOOD, '{"messages": "olá"}'), "bad_messages", 2, "lista não vazia"),
    "exact_duplicate": (lines(GOOD, chat("Quem fundou?"), GOOD), "duplicate", 3, "igual ao da linha 1"),
    "normalised_duplicate": (lines(GOOD, chat("de onde É o farense")), "near_duplicate", 2, "igual à da linha 1 depois de normalizada"),
    "mixed_formats": (lines(GOOD, '{"prompt": "p", "completion": "c"}'), "mixed_formats", 2, "diferente do resto"),
    "completion_empty": (lines('{"prompt": "Quem?", "completion": ""}'), "empty_content", 1, "«completion»"),
    "empty_file": (b"", "empty_file", 0, "não tem exemplos"),
}


def run_validate(capsys, target, *extra):
    status = cli.main(["data", "validate", str(target), *extra])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_each_bad_input_has_its_message(tmp_path, capsys, name):
    content, code, line, words = BAD_INPUTS[name]
    train = tmp_path / "train.jsonl"
    train.write_bytes(content)
    status, out = run_validate(capsys, tmp_path, "--no-tokens")
    assert status == 1
    result = validate(tmp_path)
    assert [(p.code, p.line) for p in result.problems] == [(code, line)], result.problems
    expected = f"{train}:{line}: " if line else f"{train}: "
    assert expected in out and words in out, out
    assert train.read_bytes() == content  # validation never writes


def test_leakage_between_splits(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_bytes(lines(GOOD, chat("Quem fundou o Farense?")))
    (tmp_path / "valid.jsonl").write_bytes(lines(chat("Qual é a alcunha do Farense?")))
    (tmp_path / "test.jsonl").write_bytes(lines(chat("quem fundou o FARENSE")))
    status, out = run_validate(capsys, tmp_path, "--no-tokens")
    assert status == 1
    assert f"{tmp_path / 'test.jsonl'}:1: fuga entre conjuntos" in out and f"{tmp_path / 'train.jsonl'}:2" in out


def test_too_long_for_max_seq_length(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_bytes(lines(GOOD, chat("Conta-me a história toda do Farense, " * 5)))
    status, out = run_validate(capsys, tmp_path, "--model", "tiny", "--max-seq-length", "60")
    assert status == 1
    assert ":2: exemplo com " in out and "acima de max_seq_length=60" in out
    assert ":1:" not in out


def test_every_bad_line_is_named(tmp_path, capsys):
    rows = [GOOD, "{oops", chat(""), chat("Quem fundou?"), '{"messages": []}', chat("quem fundou")]
    (tmp_path / "train.jsonl").write_bytes(lines(*rows))
    status, out = run_validate(capsys, tmp_path, "--no-tokens")
    assert status == 1
    named = {int(line.split(":")[1]) for line in out.splitlines() if line.startswith(str(tmp_path))}
    assert named == {2, 3, 5, 6}
    assert "4 problemas em 4 linhas" in out


def test_question_answer_pairs_are_accepted(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text('{"question": "De onde é o Farense?", "answer": "De Faro."}\n', encoding="utf-8")
    status, out = run_validate(capsys, tmp_path, "--no-tokens")
    assert status == 0 and "train: 1 exemplos" in out


def test_clean_writes_new_files_and_a_report(tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    train = b"\xef\xbb\xbf" + lines(GOOD, "{oops", chat("Quem\u0007 fundou?"), GOOD, '{"question": "Alcunha?", "answer": "Leões de Faro."}')
    test = lines(chat("quem fundou"), chat("Qual é a cor do equipamento?"))
    (source / "train.jsonl").write_bytes(train)
    (source / "test.jsonl").write_bytes(test)
    out = tmp_path / "out"
    assert cli.main(["data", "clean", str(source), "--output", str(out), "--no-tokens"]) == 0
    assert (source / "train.jsonl").read_bytes() == train and (source / "test.jsonl").read_bytes() == test
    assert validate(out).problems == []
    report = json.loads((out / "clean_report.json").read_text())
    assert report["kept"] == {"train": 3, "test": 1}
    reasons = {(c["line"], c["action"]) for c in report["changes"] if c["path"].endswith("train.jsonl")}
    assert {(1, "alterado"), (2, "removido"), (3, "alterado"), (4, "removido"), (5, "alterado")} <= reasons
    assert any("fuga entre conjuntos" in c["reason"] for c in report["changes"] if c["path"].endswith("test.jsonl"))
    assert "| ação | motivo |" in (out / "clean_report.md").read_text()


def test_clean_refuses_to_write_over_its_input(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_bytes(lines(GOOD))
    assert cli.main(["data", "clean", str(tmp_path), "--output", str(tmp_path), "--no-tokens"]) == 2
    assert "não pode ser a de entrada" in capsys.readouterr().err


def test_split_is_deterministic_and_keeps_questions_together(tmp_path, capsys):
    rows = [chat(f"Pergunta número {i} sobre o Farense?") for i in range(40)] + [chat("pergunta numero 1 sobre o farense")]
    everything = tmp_path / "all.jsonl"
    everything.write_bytes(lines(*rows[:40]))
    first, second = tmp_path / "a", tmp_path / "b"
    for out, seed in ((first, "7"), (second, "7")):
        assert cli.main(["data", "split", str(everything), "--output", str(out), "--seed", seed]) == 0
    for name in ("train", "valid", "test"):
        assert (first / f"{name}.jsonl").read_bytes() == (second / f"{name}.jsonl").read_bytes()
    assert [len((first / f"{n}.jsonl").read_text().splitlines()) for n in ("train", "valid", "test")] == [32, 4, 4]
    assert validate(first).problems == []
    other = tmp_path / "c"
    assert cli.main(["data", "split", str(everything), "--output", str(other), "--seed", "8"]) == 0
    assert (other / "test.jsonl").read_bytes() != (first / "test.jsonl").read_bytes()


def test_split_refuses_invalid_input(tmp_path, capsys):
    bad = tmp_path / "all.jsonl"
    bad.write_bytes(lines(GOOD, "{oops"))
    assert cli.main(["data", "split", str(bad), "--output", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert "data clean" in captured.err and f"{bad}:2:" in captured.out


def test_cli_subprocess_exit_status_and_no_traceback(tmp_path):
    from conftest import run_cli

    (tmp_path / "train.jsonl").write_bytes(lines(GOOD, "{oops"))
    result = run_cli("data", "validate", str(tmp_path), "--no-tokens")
    assert result.returncode == 1 and ":2: JSON inválido" in result.stdout and "Traceback" not in result.stderr
    missing = run_cli("data", "validate", str(tmp_path / "nada"))
    assert missing.returncode == 2 and "não existe" in missing.stderr
