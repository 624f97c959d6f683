"""Deterministic train/valid/test split: the same seed gives the same files."""

from __future__ import annotations

import random
from pathlib import Path

from farense_guide.data.output import check_output_folder, write_output_folder
from farense_guide.data.records import normalise, read_jsonl, user_text
from farense_guide.data.validate import input_files
from farense_guide.errors import FarenseError
from farense_guide.runs import write_jsonl


def split_records(records: list[dict], seed: int, valid_share: float, test_share: float) -> dict[str, list[dict]]:
    """Shuffle with `seed` and cut; records with the same normalised question stay together,
    so a split never leaks a question into another."""
    if not 0 <= valid_share < 1 or not 0 <= test_share < 1 or valid_share + test_share >= 1:
        raise FarenseError("as frações de validação e teste têm de estar entre 0 e 1 e somar menos de 1.")
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(normalise(user_text(record)), []).append(record)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    total = len(records)
    targets = {"test": round(total * test_share), "valid": round(total * valid_share)}
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for group in order:
        name = next((n for n in ("test", "valid") if len(splits[n]) < targets[n]), "train")
        splits[name].extend(group)
    return splits


def split(target: Path, output: Path, seed: int = 0, valid_share: float = 0.1, test_share: float = 0.1,
          force: bool = False) -> dict[str, int]:
    """Split every example of `target` (a JSONL file or a data folder) into output/{train,valid,test}.jsonl.

    A non-empty `output` is refused unless `force`, which replaces it whole; it is written whole or not at all."""
    files = input_files(target)
    if not files:
        raise FarenseError(f"{target}: não há ficheiros .jsonl para dividir.")
    output = check_output_folder(output, files.values(), force)
    records = [record for path in files.values() for record in read_jsonl(path)]
    splits = split_records(records, seed, valid_share, test_share)

    def write(folder: Path) -> None:
        for name, items in splits.items():
            write_jsonl(folder / f"{name}.jsonl", items)

    write_output_folder(output, write)
    return {name: len(items) for name, items in splits.items()}
