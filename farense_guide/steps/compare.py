"""Two runs on the same test questions: `farense-guide compare runs/A runs/B`.

Each evaluation keeps every test question's scores (evaluation/predictions.jsonl). The questions both
runs answered are paired by id, and paired.py gives, metric by metric, B minus A with its 95% interval
and p-value. A recipe is "better" than another only where this says so (p < 0.05), not because its
own interval sits higher.
"""

from __future__ import annotations

from pathlib import Path

from farense_guide import paired
from farense_guide.data.records import read_jsonl
from farense_guide.errors import FarenseError
from farense_guide.pt_format import pt, pt_difference, pt_p_value
from farense_guide.runs import RunFolder, read_json

LABELS = {"exact_match": "exact match", "precision": "precisão (tokens)", "recall": "recall (tokens)", "f1": "F1 (tokens)",
          "rouge_l": "ROUGE-L", "top1_accuracy": "top-1", "auc": "AUC", "refusal_rate_out_of_scope": "recusas fora do âmbito"}
VARIANTS = ("base", "tuned")


def evaluated(run_path: Path) -> tuple[dict, dict[str, dict]]:
    """A run's evaluation report and its predictions by question id; a run not evaluated stops here."""
    run = RunFolder(run_path)
    if not run.evaluation_report.is_file() or not run.predictions.is_file():
        raise FarenseError(f"{run_path}: o run ainda não foi avaliado (falta {run.predictions}).", hint=f"farense-guide evaluate {run_path}")
    return read_json(run.evaluation_report), {row["id"]: row for row in read_jsonl(run.predictions)}


def compare_runs(first_path: Path, second_path: Path, variant: str = "tuned") -> dict:
    """The paired comparison of `variant` (tuned or base) of the second run against the first, on their common questions."""
    first_report, first_rows = evaluated(first_path)
    second_report, second_rows = evaluated(second_path)
    first_data, second_data = (report["data"]["test"]["sha256"] for report in (first_report, second_report))
    if first_data != second_data:
        raise FarenseError(f"{first_path} e {second_path} foram avaliados em ficheiros de teste diferentes "
                           f"(sha256 {first_data[:12]}… e {second_data[:12]}…): as perguntas não se podem emparelhar.")
    common = [question for question in first_rows if question in second_rows]
    if len(common) < 2:
        raise FarenseError(f"{first_path} e {second_path} têm {len(common)} perguntas de teste em comum: são precisas pelo menos 2.")
    scores = f"{variant}_scores"
    result = paired.paired_report([first_rows[q][scores] for q in common], [second_rows[q][scores] for q in common],
                                  [first_rows[q]["kind"] for q in common], str(first_path), str(second_path))
    return {**result, "variant": variant, "questions": {"first": len(first_rows), "second": len(second_rows), "common": len(common)}}


def verdict(difference: dict) -> str:
    """«melhor», «pior» or «sem diferença detetável», for the second run against the first."""
    if not difference["significant"]:
        return "sem diferença detetável"
    return "melhor" if difference["difference"] > 0 else "pior"


def comparison_rows(result: dict) -> list[list[str]]:
    """Header and one row per metric: the two means, the paired difference, the test and the verdict."""
    rows = [["métrica", "A", "B", "B − A [IC 95%]", "teste", "B em relação a A"]]
    for name, d in result["metrics"].items():
        rows.append([LABELS[name], pt(d["first"], 3), pt(d["second"], 3), pt_difference(d), f"{d['test']}, {pt_p_value(d['p_value'])}", verdict(d)])
    return rows


def markdown_table(rows: list[list[str]]) -> list[str]:
    return [f"| {' | '.join(rows[0])} |", "| " + " | ".join("---" for _ in rows[0]) + " |", *(f"| {' | '.join(row)} |" for row in rows[1:])]


def comparison_note(result: dict) -> str:
    counts = result["questions"]
    missing = "" if counts["first"] == counts["second"] == counts["common"] else (
        f" (A foi avaliado em {counts['first']}, B em {counts['second']})")
    return (f"A = `{result['first']}`, B = `{result['second']}`, modelo {'afinado' if result['variant'] == 'tuned' else 'base'} de cada; "
            f"{result['items']} perguntas de teste em comum{missing}. Diferença emparelhada com {result['resamples']} reamostragens "
            f"bootstrap das mesmas perguntas; «melhor» ou «pior» só com p < {pt(result['alpha'], 2)}.")
