"""Records in the formats mlx-lm trains on, plus the {"question", "answer"} pairs people have.

mlx-lm accepts, per JSONL line: {"messages": [...]} (chat), {"prompt", "completion"}
or {"text"}. Plain {"question", "answer"} pairs are converted to chat.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from farense_guide.data.jsonl import LineError, parse_line, read_data_file
from farense_guide.errors import FarenseError


DATA_SPLITS = ("train", "valid", "test")
# The system prompt of every example in data/: the chat command uses it too.
FARENSE_SYSTEM_PROMPT = (
    "És o assistente do Sporting Clube Farense, o clube de futebol de Faro. Respondes em português de Portugal, "
    "com frases completas e apenas com factos verificados; quando não sabes, dizes que não tens essa informação."
)
ROLES = ("system", "user", "assistant")
FORMAT_KEYS = {
    "chat": ("messages",),
    "completions": ("prompt", "completion"),
    "text": ("text",),
    "qa": ("question", "answer"),
}


def record_format(record: dict) -> str | None:
    """'chat', 'completions', 'text' or 'qa' (first match, in mlx-lm's order), else None."""
    for name in ("completions", "chat", "text", "qa"):
        if all(key in record for key in FORMAT_KEYS[name]):
            return name
    return None


def to_chat(record: dict, system_prompt: str | None = None) -> dict:
    """A {"question", "answer"} pair as an mlx-lm chat record; other formats unchanged."""
    if record_format(record) != "qa":
        return record
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": "user", "content": record["question"]}, {"role": "assistant", "content": record["answer"]}]
    return {"messages": messages}


def one_record_per_answer(records: list[dict]) -> list[dict]:
    """Each chat record cut after each of its assistant turns, so that every answer is trained on.

    mlx-lm's ChatDataset (with mask_prompt) puts the loss on the last assistant turn only; a conversation with three
    answers becomes three records, each ending at one of them, and the earlier answers are then part of the prompt.
    """
    cut = []
    for record in records:
        ends = [i for i, m in enumerate(record.get("messages") or []) if isinstance(m, dict) and m.get("role") == "assistant"]
        cut += [{**record, "messages": record["messages"][:end + 1]} for end in ends] or [record]
    return cut


def user_text(record: dict) -> str:
    """What the user asked: every user turn, the prompt, or the text itself."""
    kind = record_format(record)
    if kind == "chat":
        return "\n".join(m.get("content", "") for m in record["messages"] if isinstance(m, dict) and m.get("role") == "user")
    if kind == "completions":
        return str(record["prompt"])
    if kind == "qa":
        return str(record["question"])
    return str(record.get("text", ""))


def normalise(text: str) -> str:
    """Text for near-duplicate checks: lowercase, no accents, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    no_accents = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]|_", " ", no_accents).split())


def canonical(record: dict) -> str:
    """The record as sorted, compact JSON, for exact-duplicate checks."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL file that is known to be valid; should it not be, a FarenseError names file and line."""
    data = read_data_file(path)
    records = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            records.append(parse_line(raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise FarenseError(f"{path}:{number}: não é UTF-8 válido (byte 0x{raw[exc.start]:02x} na coluna {exc.start + 1}).") from None
        except LineError as exc:
            raise FarenseError(f"{path}:{number}: {exc.message}") from None
    return records
