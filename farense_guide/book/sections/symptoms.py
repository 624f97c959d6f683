"""What a model that trains but answers badly looks like (chapter 13 «Treina, mas responde mal»): answers in a loop,
answers that never finish, out-of-scope questions answered, facts refused, and the base beating the fine-tuned model.

Every example is chosen by a rule below from the run's evaluation/predictions.jsonl, never by hand; the tables and the
run's files are answers.py's. A neighbouring fact instead of the one asked is answers.py's rule (chapter 10 explains it).

Fragments (guide/_generated/): symptoms_loops.md, symptoms_unfinished.md, symptoms_out_of_scope.md,
symptoms_refused_facts.md, symptoms_base_better.md. Values: symptoms.*.
"""

from __future__ import annotations

from pathlib import Path

from farense_guide import metrics
from farense_guide.book.sections import answers
from farense_guide.book.sections.answers import BASE, QUESTION, REFERENCE, SHOWN, TUNED, f1_of, read_run, table
from farense_guide.pt_format import pt

LOOP_NGRAM = 3  # a loop: this many words in a row...
LOOP_SHARE = 0.5  # ...repeated, for at least this share of the answer's word n-grams
FINAL = tuple(".!?…»)\"'")  # how a finished sentence ends


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


def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    rows, report, _, _ = read_run(run_path)
    loops_base, cut_base = loops(rows, "base"), cut_off(rows, "base")
    better = base_better(rows)
    facts = [row for row in rows if row["kind"] != "out_of_scope"]
    files = {
        "symptoms_loops.md": table(loops_base[:SHOWN], [QUESTION, BASE, ("repetição", lambda row: pt(repetition(row["base_answer"]), 2))]),
        "symptoms_unfinished.md": table(cut_base[:SHOWN], [QUESTION, BASE, ("caracteres", lambda row: str(len(row["base_answer"])))]),
        "symptoms_out_of_scope.md": table(answered_out_of_scope(rows)[:SHOWN], [QUESTION, TUNED]),
        "symptoms_refused_facts.md": table(refused_facts(rows)[:SHOWN], [QUESTION, TUNED, REFERENCE]),
        "symptoms_base_better.md": table(better[:SHOWN], [QUESTION, BASE, TUNED, ("F1 do base", f1_of("base")), ("F1 do afinado", f1_of("tuned"))]),
    }
    values = {
        "max_tokens": str(report.get("max_tokens", "—")),
        "loops.ngram": str(LOOP_NGRAM), "loops.share": pt(LOOP_SHARE * 100, 0),
        "loops.base": str(len(loops_base)), "loops.tuned": str(len(loops(rows, "tuned"))),
        "unfinished.base": str(len(cut_base)), "unfinished.tuned": str(len(cut_off(rows, "tuned"))),
        "unfinished.base_looping": str(len({row["id"] for row in cut_base} & {row["id"] for row in loops_base})),
        "oos.items": str(len(rows) - len(facts)), "oos.answered_tuned": str(len(answered_out_of_scope(rows))),
        "oos.answered_base": str(len(answered_out_of_scope(rows, "base"))),
        "facts.items": str(len(facts)), "facts.refused_tuned": str(len(refused_facts(rows))),
        "facts.refused_base": str(len(refused_facts(rows, "base"))),
        "base_better.count": str(len(better)),
        "base_better.echo": str(sum(echoes(row["question"], row["base_answer"]) for row in better)),
    }
    return files, {f"symptoms.{name}": value for name, value in values.items()}


def sources(run_path: Path) -> list[Path]:
    return answers.sources(run_path)  # the same predictions and report
