"""Reading the user's JSONL files defensively: regular files only, bounded in size, nesting and numbers.

A data file can be anything a user points at: a FIFO (reading it would wait forever), a device, a
folder, a gigabyte of one line, JSON nested 200 000 levels deep, an integer of 5000 digits, or a
lone surrogate escaped as "\\ud800" (valid JSON, but no UTF-8 can hold it). Each of these becomes a
pt-PT message that names the file and, where there is one, the line.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path

from farense_guide.errors import FarenseError

MAX_FILE_BYTES = 256 * 2**20
MAX_DEPTH = 64  # levels of [] and {}; real records use three or four
MAX_INTEGER_DIGITS = 18  # |n| < 10**18
SURROGATE = re.compile(r"[\ud800-\udfff]")

# Python's json messages (json/decoder.py and _json.c, 3.11 to 3.13), by prefix.
JSON_REASONS = {
    "Expecting value": "falta um valor (texto entre aspas, número, objeto, lista, true, false ou null)",
    "Expecting property name enclosed in double quotes": "esperava o nome de uma chave entre aspas duplas",
    "Expecting ',' delimiter": "falta uma vírgula, ou o fecho de um objeto ou de uma lista",
    "Expecting ':' delimiter": "faltam os dois pontos (:) depois do nome da chave",
    "Unterminated string starting at": "as aspas abertas nesta coluna nunca fecham",
    "Invalid control character at": "carácter de controlo dentro de um texto (escreva-o como \\n, \\t, …)",
    "Invalid \\uXXXX escape": "escape \\uXXXX inválido (são precisos 4 algarismos hexadecimais)",
    "Invalid \\escape": "escape inválido (depois de \\ só vale \" \\ / b f n r t u)",
    "Extra data": "há mais conteúdo depois do fim do JSON (um objeto por linha)",
    "Illegal trailing comma before end of object": "vírgula a mais antes de fechar o objeto",
    "Illegal trailing comma before end of array": "vírgula a mais antes de fechar a lista",
}


class UnreadableFile(FarenseError):
    """A data file that is not read at all: `reason` says why, without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


class LineError(ValueError):
    """A line that is not acceptable JSON; `message` is pt-PT and names the column where there is one."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "uma pasta"), (stat.S_ISFIFO, "um FIFO (pipe com nome)"), (stat.S_ISSOCK, "um socket"),
             (stat.S_ISCHR, "um dispositivo"), (stat.S_ISBLK, "um dispositivo"))
    return next((name for test, name in kinds if test(mode)), "um ficheiro especial")


def read_data_file(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; anything else raises UnreadableFile."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(path, f"não é um ficheiro normal, é {file_kind(info.st_mode)}; só se leem ficheiros.")
        if info.st_size > MAX_FILE_BYTES:
            raise UnreadableFile(path, f"ficheiro com {info.st_size} bytes, acima do limite de {MAX_FILE_BYTES} ({MAX_FILE_BYTES // 2**20} MiB).")
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, opening it does not wait for a writer.
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(handle, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise UnreadableFile(path, "deixou de ser um ficheiro normal enquanto era aberto.")
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UnreadableFile(path, "não existe.") from None
    except OSError as exc:
        raise UnreadableFile(path, f"não foi possível ler o ficheiro ({exc.strerror or exc}).") from None
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(path, f"o ficheiro cresceu acima do limite de {MAX_FILE_BYTES // 2**20} MiB enquanto era lido.")
    return data


def read_text_file(path: Path) -> str:
    """A regular UTF-8 text file (a data card, say), read as read_data_file reads."""
    data = read_data_file(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise UnreadableFile(path, f"linha {line}: não é UTF-8 válido (byte 0x{data[exc.start]:02x}).") from None


def json_reason(exc: json.JSONDecodeError) -> str:
    return next((reason for prefix, reason in JSON_REASONS.items() if exc.msg.startswith(prefix)), "erro de sintaxe")


def bounded_integer(digits: str) -> int:
    count = len(digits.lstrip("-"))
    if count > MAX_INTEGER_DIGITS:
        raise LineError("big_integer", f"número inteiro com {count} algarismos (o máximo aceite é {MAX_INTEGER_DIGITS})")
    return int(digits)


def finite_number(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise LineError("big_number", f"número fora do alcance ({digits[:20]}{'…' if len(digits) > 20 else ''})")
    return value


def refuse_constant(name: str):
    raise LineError("invalid_json", f"JSON inválido: {name} não é um valor JSON (use null ou um número)")


def check_value(value) -> None:
    """Nesting within MAX_DEPTH and no lone surrogate in any text, keys included."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise LineError("too_deep", f"JSON aninhado a mais de {MAX_DEPTH} níveis")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and (surrogate := SURROGATE.search(item)):
            code = ord(surrogate.group())
            raise LineError("surrogate", f"texto com um substituto isolado U+{code:04X} (escrito como \\u{code:04x}), que não é UTF-8 válido")


def parse_line(text: str):
    """One JSONL line as a value, or LineError with a pt-PT reason and the column where there is one."""
    try:
        value = json.loads(text, parse_int=bounded_integer, parse_float=finite_number, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        raise LineError("invalid_json", f"JSON inválido na coluna {exc.colno}: {json_reason(exc)}") from None
    except RecursionError:
        raise LineError("too_deep", f"JSON aninhado a mais de {MAX_DEPTH} níveis") from None
    check_value(value)
    return value
