"""Cleaning writes new files and says why: the input is never touched.

Fixed: a BOM, control characters, {"question", "answer"} pairs converted to chat;
nothing that validation accepts is changed. Dropped: lines that stay invalid,
duplicates, examples longer than max_seq_length, and valid/test questions that leak
from an earlier split. The output folder is written whole or not at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from farense_guide.data.jsonl import LineError, parse_line, read_data_file
from farense_guide.data.output import check_output_folder, markdown_cell, write_output_folder
from farense_guide.data.records import canonical, normalise, to_chat, user_text
from farense_guide.data.validate import (
    BOM, Example, FileReport, check_leakage, check_lengths, check_record, control_characters, count_tokens, input_files, read_lines,
)
from farense_guide.errors import FarenseError
from farense_guide.runs import safe_write, write_json, write_jsonl


@dataclass
class Change:
    path: str
    line: int
    action: str  # "alterado" | "removido"
    reason: str


def clean_text(value: str) -> str:
    for char in {char for _, char in control_characters(value)}:
        value = value.replace(char, "")
    return value


def clean_strings(value):
    """The record with every string cleaned, recursively."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: clean_strings(v) for k, v in value.items()}
    return value


def clean_file(path: Path, system_prompt: str | None, changes: list[Change]) -> FileReport:
    """The examples of one file that survive cleaning; every change is appended to `changes`."""
    source = str(path)
    data = read_data_file(path)
    if data.startswith(BOM):
        changes.append(Change(source, 1, "alterado", "BOM removido"))
        data = data[len(BOM):]
    report = FileReport(source)
    layout = FileReport(source)
    lines = read_lines(layout, data)
    changes += [Change(source, p.line, "removido", p.message) for p in layout.problems]
    seen_exact: dict[str, int] = {}
    seen_question: dict[str, int] = {}
    first_format = None
    for number, text in lines:
        try:
            original = parse_line(text)
        except LineError as exc:
            changes.append(Change(source, number, "removido", exc.message))
            continue
        record = to_chat(clean_strings(original), system_prompt) if isinstance(original, dict) else original
        check = FileReport(source)
        kind = check_record(check, number, record)
        if kind is None:
            changes.append(Change(source, number, "removido", "; ".join(p.message for p in check.problems)))
            continue
        if record != original:
            what = "convertido de question/answer para chat" if "question" in original else "caracteres de controlo removidos"
            changes.append(Change(source, number, "alterado", what))
        first_format = first_format or kind
        if kind != first_format:
            changes.append(Change(source, number, "removido", f"formato «{kind}» diferente do resto do ficheiro («{first_format}»)"))
            continue
        key, question = canonical(record), normalise(user_text(record))
        if key in seen_exact or question in seen_question:
            first = seen_exact.get(key) or seen_question[question]
            changes.append(Change(source, number, "removido", f"repetido da linha {first}"))
            continue
        seen_exact[key] = number
        seen_question[question] = number
        report.examples.append(Example(source, number, record, kind))
    return report


def drop_flagged(reports: dict[str, FileReport], changes: list[Change]) -> None:
    """Remove the examples that leakage or length checks flagged, recording why."""
    for report in reports.values():
        flagged = {p.line: p.message for p in report.problems}
        changes += [Change(report.path, line, "removido", message) for line, message in sorted(flagged.items())]
        report.examples = [e for e in report.examples if e.line not in flagged]
        report.problems = []


def clean(target: Path, output: Path, system_prompt: str | None = None, tokenizer=None, max_seq_length: int | None = None,
          force: bool = False) -> list[Change]:
    """Cleaned copies of `target`'s JSONL files in `output`, plus clean_report.json/.md there.

    A non-empty `output` is refused unless `force`, which replaces it whole. When a file loses every
    example, only the report is written (it says why) and a FarenseError names the file."""
    files = input_files(target)
    if not files:
        raise FarenseError(f"{target}: não há ficheiros .jsonl para limpar.")
    output = check_output_folder(output, files.values(), force)
    changes: list[Change] = []
    reports = {name: clean_file(path, system_prompt, changes) for name, path in files.items()}
    check_leakage(reports)
    if tokenizer is not None and max_seq_length:
        for report in reports.values():
            count_tokens(report.examples, tokenizer)
            check_lengths(report, max_seq_length)
    drop_flagged(reports, changes)
    emptied = [str(files[name]) for name, report in reports.items() if not report.examples]

    def write(folder: Path) -> None:
        if not emptied:
            for name, report in reports.items():
                write_jsonl(folder / f"{name}.jsonl", [e.record for e in report.examples])
        write_clean_report(folder, reports, changes)

    write_output_folder(output, write)
    if emptied:
        raise FarenseError(f"{', '.join(emptied)}: nenhum exemplo sobreviveu à limpeza; não foi escrito nenhum ficheiro de dados, "
                           f"só o relatório.", hint=f"os motivos estão em {output / 'clean_report.md'}")
    return changes


def write_clean_report(output: Path, reports: dict[str, FileReport], changes: list[Change]) -> None:
    kept = {name: len(r.examples) for name, r in reports.items()}
    write_json(output / "clean_report.json", {"kept": kept, "changes": [asdict(c) for c in changes]})
    lines = ["# Relatório de limpeza", "", "| ficheiro | exemplos mantidos |", "| --- | --- |"]
    lines += [f"| {markdown_cell(name)}.jsonl | {count} |" for name, count in kept.items()]
    lines += ["", "| origem | linha | ação | motivo |", "| --- | --- | --- | --- |"]
    lines += [f"| {markdown_cell(c.path)} | {c.line} | {c.action} | {markdown_cell(c.reason)} |" for c in changes]
    if not changes:
        lines.append("| — | — | — | nada a alterar |")
    safe_write(output / "clean_report.md", "\n".join(lines) + "\n")
