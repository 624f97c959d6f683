"""Chapter 5's «Os seus dados»: the example CSV becomes data the package trains and evaluates on, split item by item,
with refusals the evaluation recognises; and the chapter's claim that the recipe study never varied the data."""

import importlib.util
import json
from collections import Counter

import pytest

from conftest import ROOT

from farense_guide.data.records import normalise, user_text
from farense_guide.data.validate import validate
from farense_guide.metrics import REFUSAL


@pytest.fixture(scope="module")
def snippet():
    spec = importlib.util.spec_from_file_location("dados_proprios", ROOT / "snippets" / "05_dados_proprios.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def splits(snippet):
    return snippet.dividir(snippet.ler_tabela(ROOT / snippet.CSV), snippet.SEMENTE)


def test_each_item_gives_one_question_to_test_and_valid_and_the_rest_to_train(splits):
    ids = {name: Counter(example["meta"]["id"] for example in examples) for name, examples in splits.items()}
    items = set(ids["train"]) | set(ids["valid"]) | set(ids["test"])
    assert ids["test"] == ids["valid"] == Counter(dict.fromkeys(items, 1))
    assert set(ids["train"]) == items and min(ids["train"].values()) >= 1
    questions = [normalise(user_text(example)) for examples in splits.values() for example in examples]
    assert len(questions) == len(set(questions)), "a mesma pergunta em dois exemplos"


def test_the_split_is_deterministic(snippet, splits):
    assert snippet.dividir(snippet.ler_tabela(ROOT / snippet.CSV), snippet.SEMENTE) == splits


def test_refusals_and_kinds_are_what_the_evaluation_reads(splits):
    examples = [example for examples in splits.values() for example in examples]
    kinds = Counter(example["meta"]["kind"] for example in examples)
    assert set(kinds) == {"fact", "out_of_scope"}
    for example in examples:
        refused = REFUSAL.search(example["messages"][-1]["content"]) is not None
        assert refused == (example["meta"]["kind"] == "out_of_scope"), example


def test_the_written_folder_validates(snippet, splits, tmp_path):
    snippet.escrever(splits, tmp_path)
    result = validate(tmp_path)
    assert not result.problems, [str(p) for p in result.problems]
    assert result.counts() == {name: len(examples) for name, examples in splits.items()}


@pytest.mark.parametrize("row, message", [
    ("x,fact,Pergunta um?,Não sei.", "um facto cuja resposta conta como recusa"),
    ("x,out_of_scope,Pergunta um?,Talvez.", "fora do âmbito, mas a resposta não é uma recusa"),
    ("x,facto,Pergunta um?,Sim.", "tipo desconhecido"),
])
def test_a_csv_the_evaluation_would_misread_is_refused(snippet, tmp_path, row, message):
    rows = [row] + [row.replace("um?", f"{n}?") for n in ("dois", "três")]
    path = tmp_path / "perguntas.csv"
    path.write_text("item,tipo,pergunta,resposta\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        snippet.ler_tabela(path)


def test_an_item_with_too_few_questions_is_refused(snippet, tmp_path):
    path = tmp_path / "perguntas.csv"
    path.write_text("item,tipo,pergunta,resposta\nx,fact,Uma?,Sim.\nx,fact,Duas?,Sim.\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="o item x tem 2"):
        snippet.ler_tabela(path)


def test_the_recipe_study_trained_every_run_on_one_training_file():
    runs = sorted((ROOT / "runs" / "study").glob("*/run.json"))
    if not runs:
        pytest.skip("runs/study não existe nesta cópia")
    hashes = {json.loads(path.read_text(encoding="utf-8"))["data"]["train"]["sha256"] for path in runs}
    assert len(hashes) == 1, hashes


def test_the_section_values_come_from_the_files(monkeypatch):
    from farense_guide.book.sections import own_data

    if not (ROOT / "runs" / "reference" / "evaluation" / "evaluation_report.json").is_file():
        pytest.skip("runs/reference sem avaliação")
    monkeypatch.chdir(ROOT)
    files, values = own_data.fragment(ROOT / "runs" / "reference")
    assert files == {} and all(key.startswith("own_data.") for key in values)
    assert int(values["own_data.csv.test"]) == int(values["own_data.csv.items"])
    assert int(values["own_data.csv.rows"]) == sum(int(values[f"own_data.csv.{n}"]) for n in ("train", "valid", "test"))
