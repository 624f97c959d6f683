"""The guide as MkDocs sees it, for the PDF: chapter order from mkdocs.yml, and each chapter's Markdown after
the very preprocessors the site runs ([[values]], then pymdownx.snippets), parsed by markdown-it-py.

So the PDF prints the same snippet text, the same generated tables and the same values as the site.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import markdown
import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from mdit_py_plugins.admon import admon_plugin

from farense_guide.errors import FarenseError

PREPROCESSORS = ("farense_guide.book.markdown_values", "pymdownx.snippets")


@dataclass
class Chapter:
    title: str  # the nav title
    path: Path
    markdown: str  # after values and snippet includes

    def tree(self) -> SyntaxTreeNode:
        parser = MarkdownIt("commonmark").enable("table").use(admon_plugin)
        return SyntaxTreeNode(parser.parse(self.markdown))


@dataclass
class GuideSource:
    config_path: Path
    site_name: str
    description: str
    docs_dir: Path
    site_dir: Path
    chapters: list[Chapter]


def read_config(path: Path) -> dict:
    if not path.is_file():
        raise FarenseError(f"{path}: não existe (é o ficheiro de configuração do MkDocs).")
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


def extension_configs(config: dict, root: Path) -> dict[str, dict]:
    """The options mkdocs.yml gives the preprocessors that the PDF runs too, with paths taken from `root`
    (the folder of mkdocs.yml, where `mkdocs build` runs) whatever the current folder."""
    configs = {}
    for entry in config.get("markdown_extensions", []):
        name, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        if name in PREPROCESSORS:
            configs[name] = dict(options or {})
    snippets = configs.setdefault("pymdownx.snippets", {})
    if "check_paths" in snippets:
        snippets["check_paths"] = snippets["check_paths"] == "true"
    snippets["base_path"] = [str(root / p) for p in snippets.get("base_path", ["."])]
    values = configs.setdefault("farense_guide.book.markdown_values", {})
    values["values"] = str(root / values.get("values", "guide/_generated/values.json"))
    return configs


def preprocess(text: str, configs: dict[str, dict], source: str) -> str:
    """Run the site's preprocessors (values, then snippets) over one chapter."""
    md = markdown.Markdown(extensions=list(PREPROCESSORS), extension_configs=configs)
    md.farense_source = source
    lines = text.splitlines()
    for name in ("farense_values", "snippet"):
        lines = md.preprocessors[name].run(lines)
    return "\n".join(lines) + "\n"


def generated_dir(config_path: Path) -> Path:
    """guide/_generated, or wherever the docs_dir of this mkdocs.yml is."""
    return config_path.parent / read_config(config_path).get("docs_dir", "docs") / "_generated"


def read_guide(config_path: Path = Path("mkdocs.yml"), only_markdown: bool = True) -> GuideSource:
    config = read_config(config_path)
    root = config_path.parent
    docs_dir = root / config.get("docs_dir", "docs")
    configs = extension_configs(config, root)
    chapters = []
    for entry in config["nav"]:
        title, file = next(iter(entry.items()))
        if only_markdown and not file.endswith(".md"):
            continue  # the notebook is a site page only
        path = docs_dir / file
        chapters.append(Chapter(title, path, preprocess(path.read_text(encoding="utf-8"), configs, str(path))))
    return GuideSource(config_path, config["site_name"], config.get("site_description", ""), docs_dir,
                       root / config.get("site_dir", "site"), chapters)
