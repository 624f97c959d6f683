"""Chapter 14's recipe study (farense_guide/book/sections/study.py), generated from the repository's runs/study, and the
chapter's claims about it checked against the paired comparisons."""

import csv
import json
import re
from pathlib import Path

import pytest

from farense_guide.book.sections import study
from farense_guide.book.snippets import scratch_copy
from farense_guide.pt_format import pt, pt_p_value, pt_signed

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "runs" / "study"

# What chapter 14 says of each comparison (A__B: B − A), metric by metric: "better", "worse" or "none" (p ≥ alpha).
CLAIMS = {
    "e3-lr2e-4__e3-lr5e-4": {"f1": "better", "auc": "better"},
    "e3-lr2e-4__e3-lr5e-4-seed1": {"f1": "better", "auc": "better"},
    "e3-lr2e-4__e3-lr5e-4-seed2": {"f1": "better", "auc": "better"},
    "reference-lr2e-4__reference": {"f1": "none", "auc": "better"},
    "e3-lr2e-4__e3-lr3e-4": {"f1": "none", "auc": "better"},
    "e3-lr3e-4__e3-lr5e-4": {"f1": "better", "auc": "better"},
    "e3-lr5e-4__e3-lr7e-4": {"auc": "worse"},
    "e3-lr5e-4__e3-lr5e-4-constant": {"f1": "none", "auc": "worse"},
    "e2-lr5e-4__e3-lr5e-4": {"f1": "none", "auc": "better"},
    "e3-lr5e-4__e4-lr5e-4": {"f1": "none", "auc": "none"},
    "e3-lr5e-4__e3-lr5e-4-r16": {"f1": "none", "auc": "none"},
    "e3-lr5e-4__e3-lr5e-4-r4": {"f1": "worse", "auc": "worse"},
    "e3-lr5e-4__e3-lr5e-4-scale10": {"f1": "worse", "auc": "worse"},
    "e3-lr5e-4__e3-lr5e-4-scale40": {"auc": "worse"},
    "e3-lr5e-4__e3-lr5e-4-L30": {"f1": "none", "auc": "none"},
    "e3-lr5e-4__e3-lr5e-4-L8": {"auc": "worse"},
    "e3-lr5e-4__e3-lr5e-4-drop0": {"f1": "none", "auc": "none"},
    "e1-lr5e-4__e1-lr5e-4-b2": {"f1": "none", "auc": "none"},
    "e2-lr5e-4__e2-lr5e-4-b2": {"f1": "none", "auc": "none"},
    "e2-lr5e-4-seed1__e2-lr5e-4-b2-seed1": {"f1": "none", "auc": "none"},
    "e3-lr5e-4__e3-lr5e-4-b2": {"f1": "none", "auc": "none"},
    "e3-lr5e-4__e3-lr5e-4-b2-acc2": {"f1": "none", "auc": "none"},
    "e3-lr5e-4__e3-lr5e-4-nomask": {"f1": "none", "auc": "worse"},
    "e3-lr5e-4__e3-lr5e-4-every": {"f1": "worse"},
    "e3-lr5e-4-seed1__e3-lr5e-4-every-seed1": {"f1": "none"},
    "e3-lr5e-4-seed2__e3-lr5e-4-every-seed2": {"f1": "none"},
    "reference-lr2e-4__e3-lr2e-4": {"f1": "none"},
    "reference__e3-lr5e-4": {"f1": "none"},
}


def csv_rows() -> dict[str, dict]:
    with (STUDY / "study.csv").open(encoding="utf-8") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def saved_comparisons() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted((STUDY / "comparisons").glob("*.json"))}


def within_study(comparisons: dict[str, dict]) -> dict[str, dict]:
    names = csv_rows()
    return {stem: c for stem, c in comparisons.items() if all(Path(c[key]).name in names for key in ("first", "second"))}


def said(metric: dict) -> str:
    return "none" if not metric["significant"] else "better" if metric["difference"] > 0 else "worse"


@pytest.fixture(scope="module")
def generated():
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # the module reads runs/study relative to the project, as `farense-guide fragments` does
        return study.fragment(ROOT / "runs" / "reference")


def test_the_fragment_generates_from_the_repository_study(generated):
    files, values = generated
    assert set(files) == {"study_table.md", "study_effects.md"}
    rows = csv_rows()
    evaluated = [row for row in rows.values() if row["test_f1"]]
    table_rows = [line for line in files["study_table.md"].splitlines() if line.startswith("| `")]
    assert len(table_rows) == len(evaluated) == int(values["study.evaluated"])
    effects_rows = [line for line in files["study_effects.md"].splitlines() if line.startswith("| `")]
    assert len(effects_rows) == len(within_study(saved_comparisons())) == int(values["study.comparisons"])
    assert values["study.runs"] == str(len(rows))


def test_values_are_those_of_study_csv(generated):
    _, values = generated
    for name, row in csv_rows().items():
        if row["test_f1"]:
            assert values[f"study.run.{name.lower()}.f1"] == pt(float(row["test_f1"]), 3)
            assert values[f"study.run.{name.lower()}.auc"] == pt(float(row["test_auc"]), 3)
        if row["cpu_minutes"]:
            assert values[f"study.run.{name.lower()}.cpu_minutes"] == pt(float(row["cpu_minutes"]), 0)
    assert values["study.run.e3-lr1e-3.learning_rate"] == "1e-3"
    assert values["study.run.e3-lr5e-4-r4.lora_rank"] == csv_rows()["e3-lr5e-4-r4"]["lora_rank"]


def test_values_are_those_of_the_comparison_files(generated):
    _, values = generated
    comparisons = within_study(saved_comparisons())
    for stem, comparison in comparisons.items():
        for metric in ("f1", "auc"):
            if metric in comparison["metrics"]:
                assert values[f"study.cmp.{stem.lower()}.{metric}"] == pt_signed(comparison["metrics"][metric]["difference"], 3)
                assert values[f"study.cmp.{stem.lower()}.{metric}_p"] == pt_p_value(comparison["metrics"][metric]["p_value"])
    tests = [c["metrics"][m] for c in comparisons.values() for m in ("f1", "auc") if m in c["metrics"]]
    assert values["study.tests"] == str(len(tests))
    assert values["study.detectable"] == str(sum(t["significant"] for t in tests))
    alpha = next(iter(comparisons.values()))["alpha"]
    assert values["study.chance_findings"] == pt(alpha * len(tests), 0)


def test_the_chapter_claims_match_the_paired_comparisons(generated):
    _, values = generated
    comparisons = saved_comparisons()
    wrong = [f"{stem} {metric}: o capítulo diz {claim}, a comparação dá {said(comparisons[stem]['metrics'][metric])}"
             for stem, claims in CLAIMS.items() for metric, claim in claims.items()
             if said(comparisons[stem]["metrics"][metric]) != claim]
    assert not wrong, "\n".join(wrong)
    # «nenhuma outra mudança à receita mostrou ganho detetável»
    assert not [stem for stem, c in comparisons.items() if stem.startswith("e3-lr5e-4__")
                and any(said(c["metrics"][m]) == "better" for m in ("f1", "auc"))]
    assert not [stem for stem in comparisons if "e3-lr1e-3" in stem.split("__")]  # «não tem comparação emparelhada guardada»
    rows = csv_rows()
    evaluated = {name: row for name, row in rows.items() if row["test_f1"]}
    assert max(evaluated, key=lambda name: float(evaluated[name]["test_f1"])) == "e3-lr5e-4-r16"  # «o maior F1 do estudo»
    short = [float(row["test_auc"]) for row in evaluated.values() if float(row["epochs"]) < 1]
    base_auc = json.loads((ROOT / "runs/reference/evaluation/evaluation_report.json").read_text(encoding="utf-8"))["base"]["auc"]
    assert max(short) < base_auc  # «com menos de uma época, nenhuma receita chegou à AUC do modelo base»
    assert int(values["study.detectable"]) > float(values["study.chance_findings"].replace(",", "."))
    for stem in ("e3-lr5e-4__e3-lr5e-4-b2", "e3-lr5e-4__e3-lr5e-4-l8"):  # «custa menos», «pouparam»
        assert values[f"study.cmp.{stem}.minutes_change"].startswith("−")


def test_sources_exist_and_name_the_study():
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        sources = study.sources(ROOT / "runs" / "reference")
        assert all(path.exists() for path in sources)
        assert Path("runs/study/study.json") in sources
        assert all(source.exists() for source, _ in study.FIGURES)


def test_the_scratch_copy_has_what_the_study_needs(tmp_path, monkeypatch):
    copy = scratch_copy(tmp_path / "copy")
    assert (copy / "runs/study/study.json").exists() and (copy / "runs/study/study.png").exists()
    assert (copy / "runs/study/e3-lr5e-4/evaluation/predictions.jsonl").exists()  # what `farense-guide compare` reads
    assert not list((copy / "runs/study").rglob("train.log")) and not list((copy / "runs/study").rglob("figures"))
    monkeypatch.chdir(copy)
    files, values = study.fragment(copy / "runs" / "reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        assert (files, values) == study.fragment(ROOT / "runs" / "reference")


def test_every_study_value_the_chapter_names_is_generated(generated):
    _, values = generated
    chapter = (ROOT / "guide" / "14-otimizacoes.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\[\[(study\.[a-z0-9_.-]+)\]\]", chapter))
    assert named and not named - set(values), sorted(named - set(values))
