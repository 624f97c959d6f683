"""Reading a run's answers (chapter 10 «Ler os resultados»): the best and worst, the canonical sentences the model
recites, and why the reference answers' perplexity falls to ~1 while exact match stays low.

Every example is chosen by a rule below from the run's evaluation/predictions.jsonl (one row per test question: id,
kind, question, reference, the base's and the fine-tuned model's answers and scores), never by hand. A rule that finds
nothing says so in its fragment: a tiny random model's run must build the guide too. The table helpers here serve
chapter 13's symptoms too (symptoms.py).

Fragments (guide/_generated/): answers_best_worst.md, answers_neighbours.md. Values: answers.*.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from farense_guide import metrics
from farense_guide.data.output import markdown_cell
from farense_guide.data.records import normalise, read_jsonl
from farense_guide.pt_format import pt
from farense_guide.runs import RunFolder, read_json
from farense_guide.steps.compare import markdown_table

SHOWN = 3  # examples per table
CUT = 180  # characters of an answer shown in a table
PPL_LOW = 1.5  # a reference answer "known by heart": its perplexity under the model below this
NONE = "*Nenhum exemplo neste run: a regra não encontrou nenhuma resposta.*"


# ── the rules ──────────────────────────────────────────────────────────────────────────────────


def ranked(rows: list[dict], best: bool) -> list[dict]:
    """The fine-tuned answers by token F1, highest (best) or lowest first; ties by id, in alphabetical order."""
    return sorted(rows, key=lambda row: (-row["tuned_scores"]["f1"] if best else row["tuned_scores"]["f1"], row["id"]))


def training_answers(train: list[dict]) -> list[str]:
    """The answer each training conversation ends with: what the loss was on."""
    return [record["messages"][-1]["content"] for record in train]


def recited(rows: list[dict], answers: list[str]) -> list[dict]:
    """Fine-tuned answers that are, word for word once normalised, the answer of a training example other than this
    question's reference: a sentence learnt for another question, recited whole. The highest F1 first, ties by id."""
    known = {metrics.normalise_answer(answer) for answer in answers}
    found = [row for row in rows if (said := metrics.normalise_answer(row["tuned_answer"])) in known
             and said != metrics.normalise_answer(row["reference"])]
    return sorted(found, key=lambda row: (-row["tuned_scores"]["f1"], row["id"]))


def neighbours(rows: list[dict], answers: list[str]) -> list[dict]:
    """A neighbouring fact instead of the one asked: a question about a fact answered with another training answer that
    is not a refusal (a refusal is chapter 13's out-of-scope rules'). The highest F1 first (the most flattering), ties
    by id."""
    return [row for row in recited(rows, answers) if row["kind"] != "out_of_scope" and not row["tuned_scores"]["refusal"]]


def answer_perplexity(scores: dict) -> float | None:
    """The perplexity of a question's reference answer: exp of minus its mean log-probability per token (the first
    candidate of the likelihood task, end of turn included); None in evaluations older than the per-question scores."""
    return math.exp(-scores["candidates"][0]) if scores.get("candidates") else None


def perplexities(rows: list[dict], variant: str) -> list[tuple[dict, float]]:
    """Each question with its reference answer's perplexity under the variant, where the evaluation has it."""
    return [(row, value) for row in rows if (value := answer_perplexity(row[f"{variant}_scores"])) is not None]


# ── the run's files ────────────────────────────────────────────────────────────────────────────


def data_files(report: dict) -> tuple[Path, Path]:
    """The training and validation files beside the test file the run was evaluated on."""
    test = Path(report["data"]["test"]["path"])
    return test.with_name("train.jsonl"), test.with_name("valid.jsonl")


def read_run(run_path: Path) -> tuple[list[dict], dict, list[dict], list[dict]]:
    """The run's predictions, its evaluation report, and the training and validation conversations it was trained on."""
    run = RunFolder(run_path)
    rows = read_jsonl(run.predictions) if run.predictions.is_file() else []
    report = read_json(run.evaluation_report)
    train, valid = (read_jsonl(path) if path.is_file() else [] for path in data_files(report))
    return rows, report, train, valid


def sources(run_path: Path) -> list[Path]:
    run = RunFolder(run_path)
    files = [run.predictions, run.evaluation_report]
    if run.evaluation_report.is_file():
        files += list(data_files(read_json(run.evaluation_report)))
    return files


# ── the tables (chapters 10 and 13) ───────────────────────────────────────────────────────────


def shown(text: str) -> str:
    """An answer as a table cell: its first CUT characters, escaped, with «…» where it was cut."""
    text = " ".join(text.split())
    return markdown_cell(text if len(text) <= CUT else text[:CUT].rstrip() + " …")


def table(rows: list[dict], columns: list[tuple[str, callable]]) -> str:
    if not rows:
        return NONE + "\n"
    return "\n".join(markdown_table([[title for title, _ in columns], *([cell(row) for _, cell in columns] for row in rows)])) + "\n"


def f1_of(variant: str):
    return lambda row: pt(row[f"{variant}_scores"]["f1"], 2)


QUESTION = ("pergunta", lambda row: shown(row["question"]))
REFERENCE = ("referência", lambda row: shown(row["reference"]))
TUNED = ("resposta do afinado", lambda row: shown(row["tuned_answer"]))
BASE = ("resposta do base", lambda row: shown(row["base_answer"]))


def best_worst_markdown(rows: list[dict]) -> str:
    columns = [QUESTION, REFERENCE, TUNED, ("F1", f1_of("tuned"))]
    return ("**As melhores**\n\n" + table(ranked(rows, best=True)[:SHOWN], columns) +
            "\n**As piores**\n\n" + table(ranked(rows, best=False)[:SHOWN], columns))


# ── the values ────────────────────────────────────────────────────────────────────────────────


def ranking_values(rows: list[dict], other: list[dict]) -> dict[str, str]:
    """The best and worst F1, how many answers share each, and what the shown ones are."""
    if not rows:
        return {"best.top_f1": "—", "best.top_count": "0", "worst.bottom_f1": "—", "worst.bottom_count": "0",
                "best.exact": "0", "worst.recited": "0"}
    best, worst = ranked(rows, best=True), ranked(rows, best=False)
    top, bottom = best[0]["tuned_scores"]["f1"], worst[0]["tuned_scores"]["f1"]
    return {"best.top_f1": pt(top, 2), "best.top_count": str(sum(row["tuned_scores"]["f1"] == top for row in rows)),
            "worst.bottom_f1": pt(bottom, 2), "worst.bottom_count": str(sum(row["tuned_scores"]["f1"] == bottom for row in rows)),
            "best.exact": str(sum(bool(row["tuned_scores"]["exact_match"]) for row in best[:SHOWN])),
            "worst.recited": str(len({row["id"] for row in worst[:SHOWN]} & {row["id"] for row in other}))}


def memory_values(rows: list[dict], train: list[dict], valid: list[dict]) -> dict[str, str]:
    """How the test relates to training: its reference answers are training answers, its questions are not."""
    if not train:
        return dict.fromkeys(("references_in_train", "min_copies", "max_copies", "questions_in_train", "valid_items",
                              "valid_in_train"), "—")
    answers = training_answers(train)
    known = set(answers)
    copies = [answers.count(row["reference"]) for row in rows]
    asked = {normalise(record["messages"][-2]["content"]) for record in train}
    valid_answers = training_answers(valid)
    return {"references_in_train": str(sum(count > 0 for count in copies)),
            "min_copies": str(min(copies, default=0)), "max_copies": str(max(copies, default=0)),
            "questions_in_train": str(sum(normalise(row["question"]) in asked for row in rows)),
            "valid_items": str(len(valid_answers)), "valid_in_train": str(sum(answer in known for answer in valid_answers))}


def perplexity_values(rows: list[dict]) -> dict[str, str]:
    """How many reference answers the model knows by heart (perplexity below PPL_LOW), and the medians."""
    scored = perplexities(rows, "tuned")  # empty in evaluations older than the per-question scores
    low = [row for row, value in scored if value < PPL_LOW]

    def median(variant: str) -> str:
        values = [value for _, value in perplexities(rows, variant)]
        return pt(statistics.median(values), 2) if values else "—"

    return {"low": pt(PPL_LOW, 1), "low_count": str(len(low)) if scored else "—",
            "low_exact": str(sum(bool(row["tuned_scores"]["exact_match"]) for row in low)) if scored else "—",
            "low_count_base": str(sum(value < PPL_LOW for _, value in perplexities(rows, "base"))) if scored else "—",
            "median": median("tuned"), "median_base": median("base")}


def commonest_error(novel: int, other: int) -> str:
    """Which wrong answer the run gives more often: a training sentence of another question, or a sentence of its own."""
    if other > novel:
        return "recitar, palavra por palavra, a frase de treino de outra pergunta"
    if novel > other:
        return "escrever uma frase que não está no treino"
    return "tanto recitar a frase de treino de outra pergunta como escrever uma frase que não está no treino"


def mean_f1(rows: list[dict]) -> str:
    return pt(statistics.mean(row["tuned_scores"]["f1"] for row in rows), 2) if rows else "—"


def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    rows, report, train, valid = read_run(run_path)
    answers = training_answers(train)
    other, neighbour = recited(rows, answers), neighbours(rows, answers)
    exact = [row for row in rows if row["tuned_scores"]["exact_match"]]
    files = {"answers_best_worst.md": best_worst_markdown(rows),
             "answers_neighbours.md": table(neighbour[:SHOWN], [QUESTION, TUNED, REFERENCE, ("F1", f1_of("tuned"))])}
    values = {"items": str(len(rows)), "shown": str(SHOWN), "cut": str(CUT), **ranking_values(rows, other),
              "canonical.own": str(len(exact)), "canonical.other": str(len(other)),
              "canonical.none": str(len(rows) - len(exact) - len(other)),
              "canonical.commonest_error": commonest_error(len(rows) - len(exact) - len(other), len(other)),
              "neighbours.count": str(len(neighbour)), "neighbours.f1": mean_f1(neighbour),
              **{f"ppl.{name}": value for name, value in perplexity_values(rows).items()},
              **{f"memory.{name}": value for name, value in memory_values(rows, train, valid).items()}}
    return files, {f"answers.{name}": value for name, value in values.items()}
