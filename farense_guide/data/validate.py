"""Validation that reports every problem, each with file, line and what is wrong, in pt-PT."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

from farense_guide.chat_template import render
from farense_guide.data.jsonl import LineError, UnreadableFile, parse_line, read_data_file
from farense_guide.data.records import DATA_SPLITS, ROLES, canonical, normalise, read_jsonl, record_format, to_chat, user_text
from farense_guide.errors import FarenseError

BOM = b"\xef\xbb\xbf"
TEXT_FIELDS = {"completions": ("prompt", "completion"), "text": ("text",), "qa": ("question", "answer")}


@dataclass(frozen=True)
class Problem:
    path: str
    line: int  # 1-based; 0 for the file as a whole
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class Example:
    path: str
    line: int
    record: dict
    format: str
    tokens: int | None = None


@dataclass
class FileReport:
    path: str
    examples: list[Example] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def add(self, line: int, code: str, message: str) -> None:
        self.problems.append(Problem(self.path, line, code, message))


def control_characters(text: str) -> list[tuple[int, str]]:
    """(position, character) of control characters other than newline and tab."""
    return [(i, c) for i, c in enumerate(text) if unicodedata.category(c) == "Cc" and c not in "\n\t"]


def check_text(report: FileReport, line: int, where: str, value) -> None:
    if not isinstance(value, str):
        report.add(line, "not_text", f"{where}: tem de ser texto, não {type(value).__name__}")
    elif not value.strip():
        report.add(line, "empty_content", f"{where}: conteúdo vazio ou só com espaços")
    elif bad := control_characters(value):
        position, char = bad[0]
        more = f" (e mais {len(bad) - 1})" if len(bad) > 1 else ""
        report.add(line, "control_character", f"{where}: carácter de controlo U+{ord(char):04X} na posição {position + 1}{more}")


def check_messages(report: FileReport, line: int, messages) -> None:
    if not isinstance(messages, list) or not messages:
        report.add(line, "bad_messages", "«messages» tem de ser uma lista não vazia de mensagens")
        return
    roles, malformed = [], False
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            report.add(line, "bad_message", f"mensagem {index}: tem de ser um objeto com «role» e «content»")
            malformed = True
            continue
        missing = [key for key in ("role", "content") if key not in message]
        if missing:
            report.add(line, "missing_keys", f"mensagem {index}: falta {' e '.join(f'«{k}»' for k in missing)}")
            malformed = True
            continue
        role = message["role"]
        if role not in ROLES:
            report.add(line, "unknown_role", f"mensagem {index}: papel desconhecido «{role}» (use system, user ou assistant)")
        roles.append(role)
        check_text(report, line, f"mensagem {index} ({role})", message["content"])
    if roles and not malformed and all(r in ROLES for r in roles) and not roles_in_order(roles):
        report.add(
            line, "role_order",
            f"papéis fora de ordem: {', '.join(roles)} (esperado: system opcional no início, "
            "depois user e assistant alternados, a terminar em assistant)",
        )


def roles_in_order(roles: list[str]) -> bool:
    turns = roles[1:] if roles[0] == "system" else roles
    expected = ["user", "assistant"] * (len(turns) // 2)
    return len(turns) >= 2 and len(turns) % 2 == 0 and turns == expected


def check_record(report: FileReport, line: int, record) -> str | None:
    """Problems of one parsed line; returns its format when it is usable."""
    if not isinstance(record, dict):
        report.add(line, "not_object", f"cada linha tem de ser um objeto JSON {{...}}, não {type(record).__name__}")
        return None
    kind = record_format(record)
    if kind is None:
        found = ", ".join(f"«{k}»" for k in record) or "nenhuma"
        report.add(
            line, "missing_keys",
            f"faltam chaves: é preciso «messages», ou «prompt» e «completion», ou «text», ou «question» e «answer» (encontradas: {found})",
        )
        return None
    before = len(report.problems)
    if kind == "chat":
        check_messages(report, line, record["messages"])
    else:
        for key in TEXT_FIELDS[kind]:
            check_text(report, line, f"«{key}»", record[key])
    return kind if len(report.problems) == before else None


def read_lines(report: FileReport, data: bytes) -> list[tuple[int, str]]:
    """(line number, text) of non-empty lines; encoding and layout problems go to the report."""
    if data.startswith(BOM):
        report.add(1, "bom", "o ficheiro começa com um BOM (U+FEFF); grave-o como UTF-8 sem BOM")
        data = data[len(BOM):]
    chunks = data.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()  # the newline that ends the last line
    last_content = max((i for i, c in enumerate(chunks) if c.strip()), default=-1)
    lines = []
    for index, raw in enumerate(chunks):
        number = index + 1
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            where = "no meio do ficheiro" if index < last_content else "no fim do ficheiro"
            report.add(number, "empty_line", f"linha vazia {where} (o mlx-lm não a aceita)")
            continue
        try:
            lines.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            report.add(number, "invalid_utf8", f"não é UTF-8 válido (byte 0x{raw[exc.start]:02x} na coluna {exc.start + 1})")
    return lines


def check_file(path: Path, display: str | None = None) -> FileReport:
    """Encoding, JSON, keys, roles, content and in-file duplicates of one JSONL file."""
    report = FileReport(display or str(path))
    try:
        data = read_data_file(path)
    except UnreadableFile as exc:
        report.add(0, "unreadable", exc.reason)
        return report
    first_format: tuple[str, int] | None = None
    seen_exact: dict[str, int] = {}
    seen_question: dict[str, int] = {}
    for number, text in read_lines(report, data):
        try:
            record = parse_line(text)
        except LineError as exc:
            report.add(number, exc.code, exc.message)
            continue
        kind = check_record(report, number, record)
        if kind is None:
            continue
        if first_format is None:
            first_format = (kind, number)
        elif kind != first_format[0]:
            report.add(number, "mixed_formats", f"formato «{kind}» diferente do resto do ficheiro («{first_format[0]}», linha {first_format[1]})")
            continue
        key = canonical(record)
        question = normalise(user_text(record))
        if key in seen_exact:
            report.add(number, "duplicate", f"exemplo repetido: igual ao da linha {seen_exact[key]}")
            continue
        if question in seen_question:
            report.add(number, "near_duplicate", f"pergunta repetida: igual à da linha {seen_question[question]} depois de normalizada")
            continue
        seen_exact[key] = number
        seen_question.setdefault(question, number)
        report.examples.append(Example(report.path, number, record, kind))
    if not report.examples and not report.problems:
        report.add(0, "empty_file", "o ficheiro não tem exemplos")
    return report


def check_leakage(reports: dict[str, FileReport]) -> None:
    """A question in a later split (valid, test) that is, normalised, a question of an earlier one."""
    earlier: dict[str, Example] = {}
    for split in DATA_SPLITS:
        if split not in reports:
            continue
        here: dict[str, Example] = {}
        for example in reports[split].examples:
            question = normalise(user_text(example.record))
            if question in earlier:
                first = earlier[question]
                reports[split].add(example.line, "leakage", f"fuga entre conjuntos: a mesma pergunta (normalizada) está em {first.path}:{first.line}")
            here.setdefault(question, example)
        for question, example in here.items():
            earlier.setdefault(question, example)


def count_tokens(examples: list[Example], tokenizer) -> None:
    """Tokens of each example as the trainer sees it: the chat template for chat records."""
    for example in examples:
        record = to_chat(example.record)
        if "messages" in record:
            text = render(tokenizer, record["messages"])
        elif "prompt" in record:
            text = record["prompt"] + record["completion"]
        else:
            text = record["text"]
        example.tokens = len(tokenizer.encode(text, add_special_tokens=False))


def check_lengths(report: FileReport, max_seq_length: int) -> None:
    for example in report.examples:
        if example.tokens is not None and example.tokens > max_seq_length:
            report.add(example.line, "too_long", f"exemplo com {example.tokens} tokens, acima de max_seq_length={max_seq_length} (o mlx-lm corta-o)")


@dataclass
class ValidationResult:
    files: dict[str, FileReport]

    @property
    def problems(self) -> list[Problem]:
        return sorted((p for r in self.files.values() for p in r.problems), key=lambda p: (p.path, p.line, p.code))

    def counts(self) -> dict[str, int]:
        return {name: len(report.examples) for name, report in self.files.items()}

    def to_dict(self) -> dict:
        return {"counts": self.counts(), "problems": [asdict(p) for p in self.problems]}


def input_files(target: Path) -> dict[str, Path]:
    """{split name or file stem: path} for a data folder or a single JSONL file."""
    if target.is_dir():
        files = {name: target / f"{name}.jsonl" for name in DATA_SPLITS if (target / f"{name}.jsonl").exists()}
        others = sorted(p for p in target.glob("*.jsonl") if p.stem not in files)
        return {**files, **{p.stem: p for p in others}}
    return {target.stem: target}


def validate(target: Path, tokenizer=None, max_seq_length: int | None = None) -> ValidationResult:
    """Every problem of a data folder (train/valid/test.jsonl) or of one JSONL file."""
    files = input_files(target)
    reports = {name: check_file(path, str(path)) for name, path in files.items()}
    if target.is_dir() and "train" not in files and len(files) != 1:
        # A folder of one JSONL file is checked as that file; any other folder is a data set, and trains on train.jsonl.
        missing = FileReport(str(target / "train.jsonl"))
        where = "a pasta não tem ficheiros .jsonl" if not files else "a pasta tem outros conjuntos mas não o de treino"
        missing.add(0, "missing_split", f"não existe ({where}; uma pasta de dados precisa de train.jsonl)")
        reports = {"train": missing, **reports}
    check_leakage(reports)
    if tokenizer is not None:
        for report in reports.values():
            count_tokens(report.examples, tokenizer)
            if max_seq_length:
                check_lengths(report, max_seq_length)
    return ValidationResult(reports)


def load_split(folder: Path, name: str, system_prompt: str | None = None) -> list[dict]:
    """One split as records mlx-lm takes, {"question", "answer"} pairs converted to chat; invalid data stops here."""
    path = Path(folder) / f"{name}.jsonl"
    if not path.is_file():
        raise FarenseError(f"{path}: não existe.", hint="farense-guide data split <ficheiro.jsonl> cria train/valid/test")
    problems = check_file(path, str(path)).problems
    if problems:
        first = problems[0]
        raise FarenseError(f"{first.path}:{first.line}: {first.message} ({len(problems)} problema(s) neste ficheiro)",
                           hint=f"farense-guide data validate {folder} lista-os todos")
    return [to_chat(r, system_prompt) for r in read_jsonl(path)]
