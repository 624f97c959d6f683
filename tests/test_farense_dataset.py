"""The shipped Farense data set: sizes, zero problems, zero leakage, reproducible, card from `stats`."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from farense_guide.data import stats
from farense_guide.data.records import normalise, read_jsonl, user_text
from farense_guide.data.validate import validate
from farense_guide.models import load_tokenizer
from farense_guide.config import load_profile

DATA = ROOT / "data"


@pytest.fixture(scope="module")
def result():
    return validate(DATA, load_tokenizer("smollm2"), load_profile("smollm2").max_seq_length)


def test_sizes(result):
    counts = result.counts()
    assert counts["train"] >= 850 and counts["valid"] >= 95 and counts["test"] >= 95


def test_validates_with_zero_problems(result):
    assert result.problems == []


def test_no_test_question_is_a_train_question():
    train = {normalise(user_text(r)) for r in read_jsonl(DATA / "train.jsonl")}
    for split in ("valid", "test"):
        questions = {normalise(user_text(r)) for r in read_jsonl(DATA / f"{split}.jsonl")}
        assert not questions & train, split
    # no single user turn of a test conversation appears anywhere in train either
    train_turns = {normalise(m["content"]) for r in read_jsonl(DATA / "train.jsonl") for m in r["messages"] if m["role"] == "user"}
    test_last_turns = {normalise(r["messages"][-2]["content"]) for r in read_jsonl(DATA / "test.jsonl")}
    assert not test_last_turns & train_turns


def test_out_of_scope_share_and_refusals():
    records = [r for split in ("train", "valid", "test") for r in read_jsonl(DATA / f"{split}.jsonl")]
    refusals = [r for r in records if r["meta"]["kind"] == "out_of_scope"]
    assert 0.07 <= len(refusals) / len(records) <= 0.13
    for record in refusals:
        answer = record["messages"][-1]["content"].lower()
        assert "não sei" in answer or "não tenho" in answer, answer


def test_test_split_uses_only_facts_with_two_sources():
    certain = set()
    for line in (DATA / "sources.md").read_text(encoding="utf-8").splitlines():
        if "[certain]" in line:
            certain.add(int(line.split(".", 1)[0]))
    for record in read_jsonl(DATA / "test.jsonl"):
        assert set(record["meta"]["facts"]) <= certain, record["meta"]


def test_build_script_reproduces_the_shipped_files(tmp_path):
    subprocess.run([sys.executable, str(DATA / "build_dataset.py"), "--facts", str(DATA / "sources.md"), "--output", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_data_card_numbers_come_from_stats(result, tmp_path):
    summary = stats.write_stats(result, tmp_path, "smollm2", 512)
    card = (DATA / "README.md").read_text(encoding="utf-8")
    assert stats.markdown_table(summary) in card
    assert json.loads((DATA / "stats" / "stats.json").read_text()) == summary
    assert (tmp_path / "token_lengths.png").stat().st_size > 10_000
