"""The guide as one PDF, from the very chapters the site uses: `farense-guide pdf` / `nox -s pdf`.

mkdocs.yml gives the chapter order; guide_source.py runs the site's preprocessors and parses each
chapter; pdf_flowables.py lays it out. Here: fonts (DejaVu, from matplotlib, embedded), the cover,
the table of contents with page numbers, PDF bookmarks per chapter and section, running headers and
page numbers. The PDF lands in guide/_generated/, so the site publishes it next to its pages and
links to it. A stamp of the inputs skips the build when nothing changed.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import BaseDocTemplate, Frame, NextPageTemplate, PageBreak, PageTemplate, Paragraph, Spacer
from reportlab.platypus.tableofcontents import TableOfContents

from farense_guide.book import pdf_flowables
from farense_guide.book.guide_source import GuideSource, read_guide
from farense_guide.book.pdf_flowables import MONO, SANS, Renderer, styles
from farense_guide.runs import Stamp, read_json, safe_write

PDF_NAME = "GUIA_COMPLETO_LLM_MLX_M1.pdf"
STAMP = ".pdf-stamp"
MARGIN = 2 * cm
FONT_FILES = {SANS: "DejaVuSans.ttf", f"{SANS}-Bold": "DejaVuSans-Bold.ttf", f"{SANS}-Oblique": "DejaVuSans-Oblique.ttf",
              f"{SANS}-BoldOblique": "DejaVuSans-BoldOblique.ttf", MONO: "DejaVuSansMono.ttf", f"{MONO}-Bold": "DejaVuSansMono-Bold.ttf",
              f"{MONO}-Oblique": "DejaVuSansMono-Oblique.ttf", f"{MONO}-BoldOblique": "DejaVuSansMono-BoldOblique.ttf"}


def register_fonts() -> None:
    """DejaVu Sans and Sans Mono from matplotlib's own fonts: accents and symbols, embedded, nothing downloaded."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name, file in FONT_FILES.items():
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    for family in (SANS, MONO):
        pdfmetrics.registerFontFamily(family, normal=family, bold=f"{family}-Bold", italic=f"{family}-Oblique",
                                      boldItalic=f"{family}-BoldOblique")


class GuideDocument(BaseDocTemplate):
    """Headings report themselves to the TOC and the outline; the header shows the current chapter."""

    def __init__(self, path: Path, title: str, subtitle: str):
        super().__init__(str(path), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
                         title=title, subject=subtitle, author="farense-guide", creator="farense-guide (reportlab)", lang="pt-PT")
        self.guide_title = title
        self.chapter_title = ""
        frame = Frame(self.leftMargin, self.bottomMargin, self.width, self.height, id="texto")
        self.addPageTemplates([PageTemplate("capa", [frame]), PageTemplate("corpo", [frame], onPageEnd=self.header_and_footer)])

    def beforeDocument(self) -> None:  # reportlab's hook; multiBuild runs the story more than once
        self.chapter_title = ""

    def header_and_footer(self, canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(SANS, 7.5)
        canvas.setFillColor(colors.HexColor("#616161"))
        top = A4[1] - MARGIN + 14
        canvas.drawString(MARGIN, top, self.guide_title)
        canvas.drawRightString(A4[0] - MARGIN, top, self.chapter_title)
        canvas.setStrokeColor(colors.HexColor("#bdbdbd"))
        canvas.line(MARGIN, top - 4, A4[0] - MARGIN, top - 4)
        canvas.drawCentredString(A4[0] / 2, MARGIN - 20, str(canvas.getPageNumber()))
        canvas.restoreState()

    def afterFlowable(self, flowable) -> None:  # reportlab's hook name
        entry = getattr(flowable, "toc_entry", None)
        if entry is None:
            return
        level, text, key = entry
        self.canv.bookmarkPage(key)
        self.canv.addOutlineEntry(text, key, level=level, closed=level > 0)
        self.notify("TOCEntry", (level, escape(text), self.page, key))
        if level == 0:
            self.chapter_title = text


def cover(source: GuideSource, values: dict[str, str]) -> list:
    base = styles()["body"]
    title = ParagraphStyle("capa-título", base, fontName=f"{SANS}-Bold", fontSize=26, leading=32, alignment=TA_CENTER,
                           textColor=colors.HexColor("#1b5e20"), spaceAfter=14)
    subtitle = ParagraphStyle("capa-subtítulo", base, fontSize=13, leading=18, alignment=TA_CENTER, spaceAfter=40)
    detail = ParagraphStyle("capa-detalhe", base, fontSize=10, leading=15, alignment=TA_CENTER)
    kind = "Run de referência" if values.get("run.kind") == "referência" else "Run de demonstração (não a referência)"
    lines = [f"{kind}: <b>{escape(values.get('run.name', '—'))}</b>, de {escape(values.get('run.date', '—'))}",
             f"Máquina: {escape(values.get('run.machine', '—'))}",
             f"Perfil <font face='{MONO}'>{escape(values.get('run.profile', '—'))}</font> · {escape(values.get('run.precision', '—'))}"]
    return [Spacer(1, 5 * cm), Paragraph(escape(source.site_name), title), Paragraph(escape(source.description), subtitle),
            *[Paragraph(line, detail) for line in lines], Spacer(1, 2 * cm),
            Paragraph("Gerado pelo farense-guide a partir dos mesmos capítulos que o site.", detail)]


def table_of_contents() -> list:
    base = styles()["body"]
    toc = TableOfContents(dotsMinLevel=0)
    toc.levelStyles = [ParagraphStyle("toc0", base, fontName=f"{SANS}-Bold", fontSize=10, leading=15, leftIndent=0, firstLineIndent=0),
                       ParagraphStyle("toc1", base, fontSize=8.5, leading=11, leftIndent=14, firstLineIndent=0)]
    return [Paragraph("Índice", styles()["h1"]), toc]


def story(source: GuideSource, values: dict[str, str], width: float, height: float) -> list:
    flowables = [NextPageTemplate("capa"), *cover(source, values), NextPageTemplate("corpo"), PageBreak(), *table_of_contents()]
    for number, chapter in enumerate(source.chapters):
        flowables.append(PageBreak())
        flowables += Renderer(width, height, chapter.path.parent, number).render(chapter.tree())
    return flowables


def pdf_stamp(source: GuideSource, values_path: Path, output: Path) -> Stamp:
    """The chapters (after values and includes), the guide's images, the values and this code.

    The stamp names the paths: files are resolved (mkdocs.yml may be given from another folder), code goes in as text
    (the same code in another copy of the project is the same input)."""
    files = [*sorted(source.docs_dir.rglob("*.png")), values_path, Path(__file__), Path(pdf_flowables.__file__)]
    return Stamp(output.with_name(STAMP), [chapter.markdown for chapter in source.chapters] + files)


def write_pdf(path: Path, source: GuideSource, values: dict[str, str]) -> None:
    register_fonts()
    document = GuideDocument(path, source.site_name, source.description)
    document.multiBuild(story(source, values, document.width, document.height))


def build_pdf(config_path: Path = Path("mkdocs.yml"), output: Path | None = None, force: bool = False) -> Path | None:
    """Write the PDF (by default guide/_generated/GUIA_COMPLETO_LLM_MLX_M1.pdf); None when it was up to date."""
    source = read_guide(config_path)
    generated = source.docs_dir / "_generated"
    output = output or generated / PDF_NAME
    values_path = generated / "values.json"
    values = read_json(values_path) if values_path.exists() else {}
    stamp = pdf_stamp(source, values_path, output)
    if not force and output.exists() and stamp.is_current():
        return None
    safe_write(output, lambda path: write_pdf(path, source, values))
    stamp.record()
    return output
