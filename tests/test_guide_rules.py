"""The guide's rules, checked on the chapter sources (fast; the real build is in test_site.py).

- every Python or shell block is an include of a file in snippets/ (pymdownx.snippets);
- every include points at a file and section that exist, and every snippet file is shown somewhere;
- prose holds no typed number: measured values come through [[name]] placeholders or generated
  fragments; only the terms in ALLOWED (names, versions, the hardware premise) keep their digits;
- chapter 13 quotes error messages the package really prints.
"""

import re
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "guide"
CODE_LANGUAGES = {"python", "py", "python3", "pycon", "bash", "sh", "shell", "console", "zsh", "shell-session"}
INCLUDE = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$')
ALLOWED = [
    r"\bM[1-4]( (Pro|Max|Ultra))?\b", r"\b16 GB\b", r"\bPython 3(\.\d+)?\b", r"\bmacOS \d+(\.\d+)?\b",
    r"\bSmolLM2(-\d+M)?(-Instruct)?\b", r"\bMistral-7B(-Instruct)?(-v0\.\d)?\b", r"\b\d+(\.\d+)?[BM]\b",
    r"\b\d+ bits\b", r"\b\d+-bit\b", r"\b(b?float|fp|int)\d+\b", r"\bQ\d_\w+\b", r"\bF1\b", r"\bROUGE-L\b",
    r"\btop-1\b", r"\bpt-PT\b", r"\bUTF-8\b", r"\b127\.0\.0\.1(:\d+)?\b", r"\bCUDA ?13\b", r"\bcuda13\b",
    r"\bx86[-_]64\b", r"\barm64\b", r"\bcapítulos? \d+((, | e | a )\d+)*\b", r"\b(19\d\d|20[0-2]\d)\b",
    r"«[^»]*»", r"\bH(100|200)\b", r"\bLlama ?\d(\.\d)?\b", r"\bQwen\d(\.\d)?\b", r"\bGemma ?\d\b", r"\bPhi-\d\b",
    r"\bmlx-lm\b", r"\bstep-N+\b", r"\bepoch-N\b", r"\b\d+\.ª\b",
]
NUMBER = re.compile(r"\d")
PLACEHOLDER = re.compile(r"\[\[[a-z0-9_.-]+\]\]")


def chapters() -> list[Path]:
    return sorted(p for p in GUIDE.glob("*.md"))


def nav_files() -> list[str]:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    return [next(iter(entry.values())) for entry in config["nav"]]


def tokens(path: Path):
    return MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))


def includes(path: Path) -> list[str]:
    return [m.group(1) for line in path.read_text(encoding="utf-8").splitlines() if (m := INCLUDE.match(line))]


def test_navigation_lists_every_chapter_once():
    listed = nav_files()
    assert len(listed) == len(set(listed))
    assert sorted(p for p in listed if p.endswith(".md")) == sorted(p.name for p in chapters())
    assert (GUIDE / "notebook.ipynb").exists() and "notebook.ipynb" in listed
    assert len([p for p in listed if re.match(r"\d\d-", p)]) == 16


def test_chapter_numbers_agree():
    """The number in a chapter's file name, its nav title, its heading and every «capítulo N» link to it are one."""
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    numbered = {file: title for entry in config["nav"] for title, file in entry.items() if re.match(r"\d\d-", file)}
    wrong = []
    for file, title in numbered.items():
        number = str(int(file[:2]))
        heading = (GUIDE / file).read_text(encoding="utf-8").splitlines()[0]
        if not title.startswith(f"{number}. ") or not heading.startswith(f"# {number}. "):
            wrong.append(f"{file}: título no nav {title!r}, cabeçalho {heading!r}")
    for chapter in chapters():
        for said, target in re.findall(r"capítulo (\d+)\]\((\d\d)-", chapter.read_text(encoding="utf-8")):
            if int(said) != int(target):
                wrong.append(f"{chapter.name}: «capítulo {said}» aponta para {target}-…")
    assert not wrong, "\n".join(wrong)
    assert list(numbered) == sorted(numbered), "o nav deve listar os capítulos pela ordem dos números"


@pytest.mark.parametrize("chapter", chapters(), ids=lambda p: p.name)
def test_code_blocks_are_snippet_includes(chapter):
    for token in tokens(chapter):
        if token.type == "fence" and token.info.split()[0:1] and token.info.split()[0].lower() in CODE_LANGUAGES:
            lines = [line for line in token.content.splitlines() if line.strip()]
            bare = [line for line in lines if not INCLUDE.match(line)]
            assert lines and not bare, f"{chapter.name}:{token.map[0] + 1}: bloco {token.info} com código escrito à mão: {bare[:2]}"


def test_includes_resolve_and_every_snippet_is_shown():
    shown = set()
    for chapter in chapters():
        for include in includes(chapter):
            path, _, section = include.partition(":")
            if path.startswith("guide/_generated/"):
                continue  # written by `farense-guide fragments`; the strict build checks them
            target = ROOT / path
            assert target.is_file(), f"{chapter.name}: inclui {path}, que não existe"
            if section and not section[0].isdigit():
                text = target.read_text(encoding="utf-8")
                assert f"--8<-- [start:{section}]" in text and f"--8<-- [end:{section}]" in text, f"{chapter.name}: {include}"
            shown.add(path)
    unshown = [p.relative_to(ROOT).as_posix() for p in (ROOT / "snippets").iterdir()
               if p.suffix in (".py", ".sh") and p.relative_to(ROOT).as_posix() not in shown]
    assert not unshown, f"snippets que nenhum capítulo mostra: {unshown}"


def prose(chapter: Path) -> list[tuple[int, str]]:
    """(line, text) of every piece of running text: no code, no includes, no placeholders, no URLs."""
    pieces = []
    stream = tokens(chapter)
    for index, token in enumerate(stream):
        if token.type != "inline":
            continue
        if index and stream[index - 1].type == "heading_open":
            text = re.sub(r"^\d+(\.\d+)*\.?\s", "", token.content)  # the chapter's own number
        else:
            text = "".join(child.content if child.type == "text" else " " for child in token.children
                           if child.type in ("text", "softbreak", "hardbreak"))
        text = "\n".join(line for line in text.splitlines() if not INCLUDE.match(line))
        pieces.append((token.map[0] + 1 if token.map else 0, PLACEHOLDER.sub("", text)))
    return pieces


@pytest.mark.parametrize("chapter", chapters(), ids=lambda p: p.name)
def test_no_typed_numbers_in_prose(chapter):
    typed = []
    for line, text in prose(chapter):
        for pattern in ALLOWED:
            text = re.sub(pattern, "", text)
        if NUMBER.search(text):
            typed.append(f"{chapter.name}:{line}: {text.strip()[:120]}")
    assert not typed, "números escritos à mão (use [[nome]] de guide/_generated/values.json):\n" + "\n".join(typed)


def package_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "farense_guide").rglob("*.py"))


def test_troubleshooting_quotes_real_error_messages():
    chapter = GUIDE / "13-problemas.md"
    source = package_source()
    quoted = [line for token in tokens(chapter) if token.type == "fence" and token.info.strip() == "text"
              for line in token.content.splitlines() if line.startswith(("erro:", "farense-guide: erro:"))]
    assert len(quoted) >= 13, f"o capítulo 13 cita {len(quoted)} mensagens de erro; pede-se pelo menos 13"
    for line in quoted:
        message = line.split("erro:", 1)[1]
        pieces = [piece.strip(" :;,.()") for piece in message.split("…") if len(piece.strip(" :;,.()")) >= 6]
        assert pieces, line
        for piece in pieces:
            assert piece in source, f"13-problemas.md cita uma mensagem que o pacote não escreve: {piece!r}"
