"""A Python-Markdown extension that puts measured values into the guide's prose: `[[run.tuned_f1]]`.

The values come from `guide/_generated/values.json`, which `farense_guide.book.fragments` writes from a
run folder, so a number in a chapter is never typed by hand. MkDocs loads it by module name in
mkdocs.yml and the PDF builder loads it the same way, so site and PDF print the same text.
It runs before pymdownx.snippets, so included code is never touched; an unknown name stops the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from markdown import Extension
from markdown.preprocessors import Preprocessor

from farense_guide.errors import FarenseError

PLACEHOLDER = re.compile(r"\[\[([a-z0-9_.-]+)\]\]")
DEFAULT_VALUES = "guide/_generated/values.json"
SNIPPETS_PRIORITY = 32  # pymdownx.snippets registers its preprocessor with this priority


def load_values(path: Path) -> dict[str, str]:
    if not path.exists():
        raise FarenseError(f"{path}: não existe; gere os valores do guia com `farense-guide fragments`.",
                           hint="ou `nox -s docs`, que os gera a partir de runs/reference (ou de um run de demonstração)")
    return json.loads(path.read_text(encoding="utf-8"))


def substitute(lines: list[str], values: dict[str, str], source: str = "?") -> list[str]:
    """Replace every [[name]]; an unknown name raises with the line that holds it."""
    for number, line in enumerate(lines, 1):
        for name in PLACEHOLDER.findall(line):
            if name not in values:
                raise FarenseError(f"{source}:{number}: valor desconhecido [[{name}]] na linha «{line.strip()[:80]}»",
                                   hint="os nomes válidos estão em guide/_generated/values.json")
    return [PLACEHOLDER.sub(lambda match: values[match.group(1)], line) for line in lines]


class ValuesPreprocessor(Preprocessor):
    def __init__(self, md, values_path: str):
        super().__init__(md)
        self.values_path = Path(values_path)

    def run(self, lines: list[str]) -> list[str]:
        if not any("[[" in line for line in lines):
            return lines
        return substitute(lines, load_values(self.values_path), getattr(self.md, "farense_source", "?"))


class ValuesExtension(Extension):
    def __init__(self, **kwargs):
        self.config = {"values": [DEFAULT_VALUES, "ficheiro JSON com os valores do guia"]}
        super().__init__(**kwargs)

    def extendMarkdown(self, md) -> None:  # Python-Markdown's name
        md.preprocessors.register(ValuesPreprocessor(md, self.getConfig("values")), "farense_values", SNIPPETS_PRIORITY + 1)


def makeExtension(**kwargs) -> ValuesExtension:  # Python-Markdown's entry point
    return ValuesExtension(**kwargs)
