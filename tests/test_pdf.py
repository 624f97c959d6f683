"""The PDF, read back with pypdf: chapter titles with their accents, a sentence of each chapter, one outline
entry per chapter, every figure of the run embedded pixel for pixel, and markup in a chapter printed literally."""

import re
import shutil

import pytest
import yaml
from PIL import Image
from pypdf import PdfReader

from farense_guide.book.guide_source import read_guide
from farense_guide.book.pdf import PDF_NAME, build_pdf

PAGES = (40, 200)  # the chapters as they stand: ~85 A4 pages with a demonstration run


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def pdf(site_project):
    path = site_project / "guide" / "_generated" / PDF_NAME
    return path, PdfReader(path)


@pytest.fixture(scope="module")
def pdf_text(pdf):
    return flat(" ".join(page.extract_text() for page in pdf[1].pages))


def first_plain_sentence(chapter) -> str:
    """Six words of the chapter's first stretch of plain text (no code, no emphasis): what the PDF must show."""
    for node in chapter.tree().walk():
        if node.type == "text" and len(node.content.split()) >= 6:
            return " ".join(node.content.split()[:6])
    raise AssertionError(f"{chapter.path}: nenhum texto simples")


def test_page_count_and_every_chapter_title_with_its_accents(site_project, pdf, pdf_text):
    _, reader = pdf
    assert PAGES[0] <= len(reader.pages) <= PAGES[1], len(reader.pages)
    guide = read_guide(site_project / "mkdocs.yml")
    for chapter in guide.chapters:
        assert chapter.title in pdf_text, chapter.title
    assert "Introdução" in pdf_text and "Limitações de um M1 de 16 GB" in pdf_text and "Otimizações avançadas" in pdf_text


def test_a_sentence_from_every_chapter(site_project, pdf_text):
    for chapter in read_guide(site_project / "mkdocs.yml").chapters:
        sentence = first_plain_sentence(chapter)
        assert sentence in pdf_text, f"{chapter.path.name}: {sentence!r}"


def test_one_outline_entry_per_chapter_with_sections_below(site_project, pdf):
    _, reader = pdf
    top = [entry for entry in reader.outline if not isinstance(entry, list)]
    chapters = read_guide(site_project / "mkdocs.yml").chapters
    assert len(top) == len(chapters)
    assert sum(isinstance(entry, list) for entry in reader.outline) >= len(chapters) - 2  # sections nested under chapters


def test_every_figure_of_the_run_is_embedded(site_project, pdf):
    _, reader = pdf
    embedded = [image.image.convert("RGB").tobytes() for page in reader.pages for image in page.images]
    figures = sorted((site_project / "guide" / "_generated" / "figures").glob("*.png"))
    from farense_guide.book.fragments import section_modules

    section_figures = [name for module in section_modules() for _, name in getattr(module, "FIGURES", [])]
    assert len(figures) == 8 + len(section_figures)  # the run's figures (paired_differences.png included) and the sections'
    assert set(section_figures) <= {figure.name for figure in figures}
    for figure in figures:
        assert Image.open(figure).convert("RGB").tobytes() in embedded, figure.name


def test_markup_in_a_chapter_prints_literally(site_project, tmp_path):
    project = tmp_path / "p"
    shutil.copytree(site_project, project, ignore=shutil.ignore_patterns("site", ".nox"))
    chapter = project / "guide" / "teste-markup.md"
    chapter.write_text("# Teste de markup\n\nUm exemplo com <script>alert('x')</script> e a < b & c > d no texto.\n\n"
                       "```text\n<b>não é negrito</b> & <font>\n```\n\n| a | b |\n| --- | --- |\n| <i>x</i> | 1 < 2 |\n",
                       encoding="utf-8")
    config = yaml.safe_load((project / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python", "#"))
    config["nav"].append({"Teste": "teste-markup.md"})
    (project / "mkdocs.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    output = build_pdf(project / "mkdocs.yml", tmp_path / "markup.pdf")
    text = flat(" ".join(page.extract_text() for page in PdfReader(output).pages))
    for literal in ("<script>alert('x')</script>", "a < b & c > d", "<b>não é negrito</b> & <font>", "<i>x</i>", "1 < 2"):
        assert literal in text, literal


def test_a_second_build_with_nothing_changed_does_nothing(site_project):
    assert build_pdf(site_project / "mkdocs.yml") is None
