"""Counts and token lengths of a data set, as JSON, a Markdown table and a histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from farense_guide.data.jsonl import read_text_file
from farense_guide.data.output import markdown_cell
from farense_guide.data.validate import ValidationResult
from farense_guide.errors import FarenseError
from farense_guide.runs import safe_write, write_json

PERCENTILES = (50, 90, 95, 99)
CARD_START = "<!-- stats:start (gerado por farense-guide data stats; não editar à mão) -->"
CARD_END = "<!-- stats:end -->"


def split_stats(tokens: list[int], examples: list) -> dict:
    roles = [m["role"] for e in examples if "messages" in e.record for m in e.record["messages"]]
    out_of_scope = sum(1 for e in examples if isinstance(meta := e.record.get("meta"), dict) and meta.get("kind") == "out_of_scope")
    return {
        "examples": len(examples),
        "out_of_scope": out_of_scope,
        "multi_turn": sum(1 for e in examples if sum(1 for m in e.record.get("messages", []) if m["role"] == "user") > 1),
        "assistant_turns": roles.count("assistant"),
        "tokens_total": int(sum(tokens)),
        "tokens_mean": round(float(np.mean(tokens)), 1) if tokens else 0.0,
        "tokens_min": int(min(tokens, default=0)),
        "tokens_max": int(max(tokens, default=0)),
        **{f"tokens_p{p}": round(float(np.percentile(tokens, p)), 1) if tokens else 0.0 for p in PERCENTILES},
    }


def compute_stats(result: ValidationResult, model: str) -> dict:
    splits = {}
    for name, report in result.files.items():
        tokens = [e.tokens for e in report.examples if e.tokens is not None]
        splits[name] = split_stats(tokens, report.examples)
    return {"tokenizer": model, "splits": splits, "problems": len(result.problems)}


def markdown_table(stats: dict) -> str:
    header = ["conjunto", "exemplos", "fora do âmbito", "multi-turno", "tokens (total)", "média", "mín.", *[f"p{p}" for p in PERCENTILES], "máx."]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, s in stats["splits"].items():
        share = f"{s['out_of_scope']} ({100 * s['out_of_scope'] / max(s['examples'], 1):.0f}%)"
        values = [f"{markdown_cell(name)}.jsonl", s["examples"], share, s["multi_turn"], s["tokens_total"], s["tokens_mean"], s["tokens_min"],
                  *[s[f"tokens_p{p}"] for p in PERCENTILES], s["tokens_max"]]
        rows.append("| " + " | ".join(str(v) for v in values) + " |")
    note = f"\nTokens contados com o tokenizador de `{stats['tokenizer']}`, com o molde de chat aplicado a cada exemplo."
    return "\n".join(rows) + "\n" + note + "\n"


def write_stats(result: ValidationResult, output: Path, model: str, max_seq_length: int | None) -> dict:
    """stats.json, stats.md and token_lengths.png in `output`."""
    from farense_guide.plots import token_length_histogram

    stats = compute_stats(result, model)
    write_json(output / "stats.json", stats)
    safe_write(output / "stats.md", markdown_table(stats))
    lengths = {name: [e.tokens for e in r.examples if e.tokens is not None] for name, r in result.files.items()}
    if any(lengths.values()):
        token_length_histogram({k: v for k, v in lengths.items() if v}, output / "token_lengths.png", max_seq_length)
    return stats


def update_card(card: Path, table: str) -> bool:
    """Replace the generated section of a data card; True when the file changed."""
    text = read_text_file(card)
    if CARD_START not in text or CARD_END not in text:
        raise FarenseError(f"{card}: faltam os marcadores da secção gerada ({CARD_START} … {CARD_END}).")
    head, rest = text.split(CARD_START, 1)
    _, tail = rest.split(CARD_END, 1)
    updated = f"{head}{CARD_START}\n{table}{CARD_END}{tail}"
    if updated == text:
        return False
    safe_write(card, updated)
    return True
