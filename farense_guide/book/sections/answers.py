"""Reading a run's answers (chapter 10) and what a model that trains but answers badly looks like (chapter 13).

Every example the two chapters show is chosen by a rule below from the run's evaluation/predictions.jsonl (one row per
test question: id, kind, question, reference, the base's and the fine-tuned model's answers and scores), never by hand;
the loss curves come from metrics.jsonl, the run's own and those of the recipe study in runs/study/. A rule that finds
nothing says so in its fragment: a tiny random model's run must build the guide too.

Fragments (guide/_generated/): answers_best_worst.md, answers_loops.md, answers_unfinished.md, answers_neighbours.md,
answers_out_of_scope.md, answers_refused_facts.md, answers_base_better.md, answers_curves.md. Values: answers.*.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from farense_guide import metrics
from farense_guide.data.output import markdown_cell
from farense_guide.data.records import normalise, read_jsonl
from farense_guide.pt_format import pt, pt_learning_rate
from farense_guide.runs import RunFolder, read_json
from farense_guide.steps.compare import markdown_table

STUDY = Path("runs/study")
SHOWN = 3  # examples per table
CUT = 180  # characters of an answer shown in a table
LOOP_NGRAM = 3  # a loop: this many words in a row...
LOOP_SHARE = 0.5  # ...repeated, for at least this share of the answer's word n-grams
FINAL = tuple(".!?…»)\"'")  # how a finished sentence ends
PPL_LOW = 1.5  # a reference answer "known by heart": its perplexity under the model below this
RISE = 0.05  # a validation loss that ends this much above its minimum rose after it (overfitting)
FAR = 2.0  # a run that ends above this many times the study's lowest final validation loss stopped far from it
NONE = "*Nenhum exemplo neste run: a regra não encontrou nenhuma resposta.*"

DIVERGED, ROSE, FELL, FAR_OFF = "divergiu", "subiu depois do mínimo", "desceu até ao fim", "desceu, mas acabou longe do mínimo do estudo"


# ── the rules ──────────────────────────────────────────────────────────────────────────────────


def repetition(text: str, n: int = LOOP_NGRAM) -> float:
    """The share of the answer's word n-grams (normalised words) that repeat an earlier one: 0 for no repetition."""
    words = metrics.answer_tokens(text)
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def loops(rows: list[dict], variant: str) -> list[dict]:
    """Answers that loop (repetition at least LOOP_SHARE), the most repetitive first, ties by id."""
    found = [row for row in rows if repetition(row[f"{variant}_answer"]) >= LOOP_SHARE]
    return sorted(found, key=lambda row: (-repetition(row[f"{variant}_answer"]), row["id"]))


def unfinished(text: str) -> bool:
    """An answer that stops mid-sentence: greedy decoding only stops at the end-of-turn token or at --max-tokens, so
    this is the sign of an answer cut by the limit (a sign, not a proof: a model can also end a turn mid-sentence)."""
    text = text.strip()
    return bool(text) and not text.endswith(FINAL)


def cut_off(rows: list[dict], variant: str) -> list[dict]:
    """Answers that stop mid-sentence, the longest first, ties by id."""
    found = [row for row in rows if unfinished(row[f"{variant}_answer"])]
    return sorted(found, key=lambda row: (-len(row[f"{variant}_answer"]), row["id"]))


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
    is not a refusal (a refusal is the next rule's). The highest F1 first (the most flattering), ties by id."""
    return [row for row in recited(rows, answers) if row["kind"] != "out_of_scope" and not row["tuned_scores"]["refusal"]]


def answered_out_of_scope(rows: list[dict], variant: str = "tuned") -> list[dict]:
    """Out-of-scope questions the model answered instead of refusing, by id."""
    return sorted((row for row in rows if row["kind"] == "out_of_scope" and not row[f"{variant}_scores"]["refusal"]),
                  key=lambda row: row["id"])


def refused_facts(rows: list[dict], variant: str = "tuned") -> list[dict]:
    """Questions about facts the model refused, by id."""
    return sorted((row for row in rows if row["kind"] != "out_of_scope" and row[f"{variant}_scores"]["refusal"]),
                  key=lambda row: row["id"])


def base_better(rows: list[dict]) -> list[dict]:
    """Questions where the base's answer scored a higher F1 than the fine-tuned one's, the widest gap first, ties by id."""
    found = [row for row in rows if row["base_scores"]["f1"] > row["tuned_scores"]["f1"]]
    return sorted(found, key=lambda row: (row["tuned_scores"]["f1"] - row["base_scores"]["f1"], row["id"]))


def echoes(question: str, answer: str) -> bool:
    """The answer repeats the question: it holds at least half of the question's distinct (normalised) words."""
    asked = set(metrics.answer_tokens(question))
    return bool(asked) and len(asked & set(metrics.answer_tokens(answer))) >= len(asked) / 2


def answer_perplexity(scores: dict) -> float | None:
    """The perplexity of a question's reference answer: exp of minus its mean log-probability per token (the first
    candidate of the likelihood task, end of turn included); None in evaluations older than the per-question scores."""
    return math.exp(-scores["candidates"][0]) if scores.get("candidates") else None


def curve_reading(valid_losses: list[float]) -> str | None:
    """What a validation curve did: ended above where it started (diverged), rose at least RISE above its minimum
    before the end (overfitting's sign), or fell to the end; None with fewer than two validations."""
    if len(valid_losses) < 2:
        return None
    low = min(valid_losses)
    if valid_losses[-1] > valid_losses[0]:
        return DIVERGED
    if valid_losses.index(low) < len(valid_losses) - 1 and valid_losses[-1] >= low * (1 + RISE):
        return ROSE
    return FELL


# ── the study's curves ────────────────────────────────────────────────────────────────────────


def study_runs(folder: Path | None = None) -> list[dict]:
    """Each run of the study with its validation losses, last training loss, learning rate and test F1 (None where
    it was not evaluated). Runs with the loss on the prompt too (mask_prompt false) are left out: their losses count
    other tokens and do not compare."""
    runs = []
    for run_json in sorted((folder or STUDY).glob("*/run.json")):
        run = RunFolder(run_json.parent)
        profile = read_json(run_json)["profile"]
        entries = run.read_metrics()
        valid = [entry["val_loss"] for entry in entries if entry.get("type") == "valid"]
        train = [entry["train_loss"] for entry in entries if entry.get("type") == "train"]
        if not profile.get("mask_prompt", True) or len(valid) < 2 or not train:
            continue
        report = run.evaluation_report
        f1 = read_json(report)["tuned"]["f1"]["mean"] if report.is_file() else None
        runs.append({"name": run.name, "valid": valid, "train": train[-1], "learning_rate": profile["learning_rate"], "f1": f1})
    return runs


def study_readings(runs: list[dict]) -> dict[str, list[dict]]:
    """The study's runs by what their curves did; a run that fell to the end but stopped above FAR times the lowest
    final validation loss of the runs that fell is read as stopped far from it (underfitting)."""
    readings = {DIVERGED: [], ROSE: [], FAR_OFF: [], FELL: []}
    for run in runs:
        readings[curve_reading(run["valid"])].append(run)
    if readings[FELL]:
        lowest = min(run["valid"][-1] for run in readings[FELL])
        readings[FAR_OFF] = [run for run in readings[FELL] if run["valid"][-1] > FAR * lowest]
        readings[FELL] = [run for run in readings[FELL] if run["valid"][-1] <= FAR * lowest]
    return readings


def span(values: list[float], digits: int) -> str:
    values = [value for value in values if value is not None]
    if not values:
        return "—"
    low, high = min(values), max(values)
    return pt(low, digits) if pt(low, digits) == pt(high, digits) else f"{pt(low, digits)} a {pt(high, digits)}"


def curves_markdown(readings: dict[str, list[dict]]) -> str:
    if not any(readings.values()):
        return f"*Nenhum run do estudo em `{STUDY}/`: não há curvas para ler.*\n"
    rows = [["leitura da curva de validação", "runs", "quais", "taxas de aprendizagem", "última perda de validação",
             "última perda de treino", "F1 de teste (dos avaliados)"]]
    for reading, runs in readings.items():
        if not runs:
            rows.append([reading, "0", "nenhum", "—", "—", "—", "—"])
            continue
        names = ", ".join(f"`{run['name']}`" for run in runs) if reading != FELL else f"os outros {len(runs)}"
        rates = ", ".join(pt_learning_rate(rate) for rate in sorted({run["learning_rate"] for run in runs}))
        rows.append([reading, str(len(runs)), names, rates, span([run["valid"][-1] for run in runs], 3),
                     span([run["train"] for run in runs], 3), span([run["f1"] for run in runs], 3)])
    return "\n".join(markdown_table(rows)) + "\n"


def curves_values(run_path: Path, readings: dict[str, list[dict]]) -> dict[str, str]:
    runs = [run for group in readings.values() for run in group]
    values = {"curves.runs": str(len(runs)), "curves.rise": pt(RISE * 100, 0), "curves.far": pt(FAR, 0)}
    values.update({f"curves.{key}": str(len(readings[reading]))
                   for key, reading in (("diverged", DIVERGED), ("rose", ROSE), ("far_off", FAR_OFF), ("fell", FELL))})
    fell = readings[FELL]
    lowest = min(fell, key=lambda run: run["valid"][-1]) if fell else None
    values["curves.lowest"] = pt(lowest["valid"][-1], 3) if lowest else "—"
    values["curves.lowest_name"] = lowest["name"] if lowest else "—"
    # Among the runs that fell to the end, the widest gap between the last validation and the last training loss:
    # how far memorising went, and whether the test paid for it.
    gap = max(fell, key=lambda run: run["valid"][-1] - run["train"]) if fell else None
    values.update({"curves.gap_name": gap["name"] if gap else "—", "curves.gap_valid": pt(gap["valid"][-1], 3) if gap else "—",
                   "curves.gap_train": pt(gap["train"], 3) if gap else "—",
                   "curves.gap_f1": pt(gap["f1"], 3) if gap and gap["f1"] is not None else "—"})
    evaluated = [run["f1"] for run in runs if run["f1"] is not None]
    values["curves.best_f1"] = pt(max(evaluated), 3) if evaluated else "—"
    # The run's own curve, read by the same rule.
    valid = [entry["val_loss"] for entry in RunFolder(run_path).read_metrics() if entry.get("type") == "valid"]
    reading = curve_reading(valid)
    values["curve.intervals"] = str(max(len(valid) - 1, 0))
    values["curve.falls"] = str(sum(after < before for before, after in zip(valid, valid[1:])))
    values["curve.reading"] = reading or "sem validações suficientes"
    return {f"answers.{name}": value for name, value in values.items()}


# ── the fragments ─────────────────────────────────────────────────────────────────────────────


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


def data_values(rows: list[dict], train: list[dict], valid: list[dict]) -> dict[str, str]:
    """How the test relates to training: its reference answers are training answers, its questions are not."""
    if not train:
        return dict.fromkeys(("references_in_train", "min_copies", "max_copies", "questions_in_train", "valid_items",
                              "valid_in_train"), "—")
    answers = training_answers(train)
    copies = [answers.count(row["reference"]) for row in rows]
    asked = {normalise(record["messages"][-2]["content"]) for record in train}
    valid_answers = training_answers(valid)
    return {"references_in_train": str(sum(count > 0 for count in copies)),
            "min_copies": str(min(copies, default=0)), "max_copies": str(max(copies, default=0)),
            "questions_in_train": str(sum(normalise(row["question"]) in asked for row in rows)),
            "valid_items": str(len(valid_answers)), "valid_in_train": str(sum(answer in set(answers) for answer in valid_answers))}


def mean_f1(rows: list[dict]) -> str:
    return pt(statistics.mean(row["tuned_scores"]["f1"] for row in rows), 2) if rows else "—"


def perplexities(rows: list[dict], variant: str) -> list[tuple[dict, float]]:
    """Each question with its reference answer's perplexity under the variant, where the evaluation has it."""
    return [(row, value) for row in rows if (value := answer_perplexity(row[f"{variant}_scores"])) is not None]


def median_perplexity(rows: list[dict], variant: str) -> str:
    values = [value for _, value in perplexities(rows, variant)]
    return pt(statistics.median(values), 2) if values else "—"


def data_files(report: dict) -> tuple[Path, Path]:
    """The training and validation files beside the test file the run was evaluated on."""
    test = Path(report["data"]["test"]["path"])
    return test.with_name("train.jsonl"), test.with_name("valid.jsonl")


def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    run = RunFolder(run_path)
    rows = read_jsonl(run.predictions) if run.predictions.is_file() else []
    report = read_json(run.evaluation_report)
    train, valid = (read_jsonl(path) if path.is_file() else [] for path in data_files(report))
    answers = training_answers(train)

    best, worst = ranked(rows, best=True), ranked(rows, best=False)
    loops_base, loops_tuned = loops(rows, "base"), loops(rows, "tuned")
    cut_base, cut_tuned = cut_off(rows, "base"), cut_off(rows, "tuned")
    other, neighbour = recited(rows, answers), neighbours(rows, answers)
    exact = [row for row in rows if row["tuned_scores"]["exact_match"]]
    oos = [row for row in rows if row["kind"] == "out_of_scope"]
    better = base_better(rows)
    scored = perplexities(rows, "tuned")  # empty in evaluations older than the per-question scores
    low = [row for row, value in scored if value < PPL_LOW]
    readings = study_readings(study_runs())

    files = {
        "answers_best_worst.md": best_worst_markdown(rows),
        "answers_loops.md": table(loops_base[:SHOWN], [QUESTION, BASE, ("repetição", lambda row: pt(repetition(row["base_answer"]), 2))]),
        "answers_unfinished.md": table(cut_base[:SHOWN], [QUESTION, BASE, ("caracteres", lambda row: str(len(row["base_answer"])))]),
        "answers_neighbours.md": table(neighbour[:SHOWN], [QUESTION, TUNED, REFERENCE, ("F1", f1_of("tuned"))]),
        "answers_out_of_scope.md": table(answered_out_of_scope(rows)[:SHOWN], [QUESTION, TUNED]),
        "answers_refused_facts.md": table(refused_facts(rows)[:SHOWN], [QUESTION, TUNED, REFERENCE]),
        "answers_base_better.md": table(better[:SHOWN], [QUESTION, BASE, TUNED, ("F1 do base", f1_of("base")), ("F1 do afinado", f1_of("tuned"))]),
        "answers_curves.md": curves_markdown(readings),
    }
    values = {
        "items": str(len(rows)), "shown": str(SHOWN), "cut": str(CUT), "max_tokens": str(report.get("max_tokens", "—")),
        "best.top_f1": pt(best[0]["tuned_scores"]["f1"], 2) if best else "—",
        "best.top_count": str(sum(row["tuned_scores"]["f1"] == best[0]["tuned_scores"]["f1"] for row in rows)) if best else "0",
        "worst.bottom_f1": pt(worst[0]["tuned_scores"]["f1"], 2) if worst else "—",
        "worst.bottom_count": str(sum(row["tuned_scores"]["f1"] == worst[0]["tuned_scores"]["f1"] for row in rows)) if worst else "0",
        "best.exact": str(sum(bool(row["tuned_scores"]["exact_match"]) for row in best[:SHOWN])),
        "worst.recited": str(len({row["id"] for row in worst[:SHOWN]} & {row["id"] for row in other})),
        "loops.ngram": str(LOOP_NGRAM), "loops.share": pt(LOOP_SHARE * 100, 0),
        "loops.base": str(len(loops_base)), "loops.tuned": str(len(loops_tuned)),
        "unfinished.base": str(len(cut_base)), "unfinished.tuned": str(len(cut_tuned)),
        "unfinished.base_looping": str(len({row["id"] for row in cut_base} & {row["id"] for row in loops_base})),
        "canonical.own": str(len(exact)), "canonical.other": str(len(other)), "canonical.none": str(len(rows) - len(exact) - len(other)),
        "neighbours.count": str(len(neighbour)), "neighbours.f1": mean_f1(neighbour),
        "oos.items": str(len(oos)), "oos.answered_tuned": str(len(answered_out_of_scope(rows))),
        "oos.answered_base": str(len(answered_out_of_scope(rows, "base"))),
        "facts.items": str(len(rows) - len(oos)), "facts.refused_tuned": str(len(refused_facts(rows))),
        "facts.refused_base": str(len(refused_facts(rows, "base"))),
        "base_better.count": str(len(better)),
        "base_better.echo": str(sum(echoes(row["question"], row["base_answer"]) for row in better)),
        "ppl.low": pt(PPL_LOW, 1), "ppl.low_count": str(len(low)) if scored else "—",
        "ppl.low_exact": str(sum(bool(row["tuned_scores"]["exact_match"]) for row in low)) if scored else "—",
        "ppl.low_count_base": str(sum(value < PPL_LOW for _, value in perplexities(rows, "base"))) if scored else "—",
        "ppl.median": median_perplexity(rows, "tuned"), "ppl.median_base": median_perplexity(rows, "base"),
        **{f"memory.{name}": value for name, value in data_values(rows, train, valid).items()},
    }
    return files, {**{f"answers.{name}": value for name, value in values.items()}, **curves_values(run_path, readings)}


def sources(run_path: Path) -> list[Path]:
    run = RunFolder(run_path)
    files = [run.predictions, run.evaluation_report, run.metrics]
    if run.evaluation_report.is_file():
        files += list(data_files(read_json(run.evaluation_report)))
    for run_json in sorted(STUDY.glob("*/run.json")):
        study_run = RunFolder(run_json.parent)
        files += [run_json, study_run.metrics, study_run.evaluation_report]
    return files
