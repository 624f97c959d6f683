"""The llama.cpp check's bookkeeping, with a stand-in for llama-cpp-python (building llama.cpp takes minutes, so
`nox -s llamacpp` runs the real one; runs/reference/export/llamacpp_check.json is its record)."""

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from farense_guide.steps import llamacpp_check

ROOT = Path(__file__).resolve().parents[1]


class FakeLlama:
    """Answers each question with the fused model's answer, except the first question, answered wrongly."""

    answers: dict = {}
    first: str = ""

    def __init__(self, model_path, **kwargs):
        assert Path(model_path).suffix == ".gguf"

    def create_chat_completion(self, messages, max_tokens, temperature, top_k, **kwargs):
        assert temperature == 0.0 and top_k == 1  # greedy
        question = messages[-1]["content"]
        answer = "outra coisa" if question == self.first else self.answers[question]
        return {"choices": [{"message": {"content": answer}}]}


def test_the_check_counts_identical_answers_and_writes_its_record(tmp_path, monkeypatch):
    run = tmp_path / "reference"
    run.mkdir()
    shutil.copy(ROOT / "runs" / "reference" / "run.json", run / "run.json")
    shutil.copytree(ROOT / "runs" / "reference" / "fuse_check", run / "fuse_check")
    (run / "export").mkdir()
    (run / "export" / "reference-f16.gguf").write_bytes(b"GGUF")
    rows = [json.loads(line) for line in (run / "fuse_check" / "answers.jsonl").read_text().splitlines()]
    FakeLlama.answers = {row["question"]: row["fused_answer"] for row in rows}
    FakeLlama.first = rows[0]["question"]
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama, __version__="fake"))
    monkeypatch.chdir(ROOT)  # the run's data path is relative to the project

    check = llamacpp_check.check_run(run, limit=10, explain=False)
    saved = json.loads((run / "export" / "llamacpp_check.json").read_text())
    assert saved["items"] == 10 and saved["identical"] == 9 and saved["differing"] == 1 and not saved["rows"][0]["identical"]
    assert saved["f1_fused"] == pytest.approx(sum(r["f1_fused"] for r in check["rows"]) / 10)


def test_without_a_gguf_the_check_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    run = tmp_path / "r"
    run.mkdir()
    shutil.copy(ROOT / "runs" / "reference" / "run.json", run / "run.json")
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama, __version__="fake"))
    assert llamacpp_check.main([str(run)]) == 2
    assert "farense-guide export" in capsys.readouterr().err
