"""Markdown (a markdown-it-py syntax tree) to reportlab flowables, with every piece of text escaped.

Chapter text goes through `escape` before any mini-markup is added, so `<script>` or `a < b & c`
in a chapter or a data example prints as itself. Code goes into `Preformatted`, which takes no markup
at all and wraps long lines at the frame's width.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from markdown_it.tree import SyntaxTreeNode
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import HRFlowable, Image, ListFlowable, ListItem, Paragraph, Preformatted, Spacer, Table, TableStyle

SANS, MONO = "DejaVuSans", "DejaVuSansMono"
LINK = "#1b5e20"
ADMONITION_COLOURS = {"note": "#1565c0", "info": "#00838f", "tip": "#2e7d32", "warning": "#ef6c00", "danger": "#c62828",
                      "example": "#6a1b9a", "question": "#558b2f", "abstract": "#0277bd", "success": "#2e7d32",
                      "failure": "#c62828", "bug": "#c62828", "quote": "#616161"}
CODE_ROWS_PER_CELL = 30
CODE_BACKGROUND = colors.HexColor("#f3f3f3")
ATTR_LIST = re.compile(r"\s*\{\s*[#.][^}]*\}\s*$")  # code inside a box is cut into rows so the box can break across pages


class CodeBlock(Preformatted):
    """Preformatted text on a light background; its pieces stay CodeBlocks when it breaks across pages."""

    def split(self, available_width, available_height):
        return [CodeBlock("\n".join(part.lines), part.style) for part in super().split(available_width, available_height)]

    def draw(self):
        self.canv.saveState()
        self.canv.setFillColor(CODE_BACKGROUND)
        self.canv.rect(-3, -3, self.width + 6, self.height + 3, stroke=0, fill=1)
        self.canv.restoreState()
        super().draw()


def column_widths(rows: list[list[Paragraph]], width: float) -> list[float]:
    """Each column at least as wide as its longest word, the rest shared by how much text each column holds."""
    padding = 14  # the table's default cell padding (6 + 6) and a little air
    def text_width(paragraph, words=False):
        font, size = paragraph.style.fontName, paragraph.style.fontSize
        pieces = re.sub(r"<[^>]+>", "", paragraph.text).split() if words else [re.sub(r"<[^>]+>", "", paragraph.text)]
        return max((stringWidth(p, font, size) for p in pieces), default=0) + padding

    columns = range(len(rows[0]))
    minimum = [max(text_width(r[i], words=True) for r in rows) for i in columns]
    natural = [max(text_width(r[i]) for r in rows) for i in columns]
    if sum(natural) <= width:
        return [n * width / sum(natural) for n in natural]
    spare = max(width - sum(minimum), 0)
    extra = [n - m for n, m in zip(natural, minimum)]
    return [m + spare * e / (sum(extra) or 1) for m, e in zip(minimum, extra)]


def styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("corpo", fontName=SANS, fontSize=9.5, leading=13.5, spaceAfter=5)
    return {
        "body": body,
        "h1": ParagraphStyle("h1", body, fontName=f"{SANS}-Bold", fontSize=20, leading=25, spaceBefore=0, spaceAfter=12,
                             textColor=colors.HexColor("#1b5e20")),
        "h2": ParagraphStyle("h2", body, fontName=f"{SANS}-Bold", fontSize=14, leading=18, spaceBefore=12, spaceAfter=6),
        "h3": ParagraphStyle("h3", body, fontName=f"{SANS}-Bold", fontSize=11.5, leading=15, spaceBefore=9, spaceAfter=4),
        "h4": ParagraphStyle("h4", body, fontName=f"{SANS}-Bold", fontSize=10, leading=14, spaceBefore=6, spaceAfter=3),
        "code": ParagraphStyle("código", body, fontName=MONO, fontSize=7.6, leading=9.6, borderPadding=3, spaceBefore=6, spaceAfter=9),
        "cell": ParagraphStyle("célula", body, fontSize=7.8, leading=10, spaceAfter=0),
        "cell_head": ParagraphStyle("cabeçalho", body, fontName=f"{SANS}-Bold", fontSize=7.8, leading=10, spaceAfter=0),
        "caption": ParagraphStyle("legenda", body, fontName=f"{SANS}-Oblique", fontSize=8.5, alignment=TA_CENTER, spaceAfter=10),
        "admonition_title": ParagraphStyle("caixa", body, fontName=f"{SANS}-Bold", fontSize=9, spaceAfter=2),
        "quote": ParagraphStyle("citação", body, leftIndent=14, textColor=colors.HexColor("#424242")),
    }


class Renderer:
    """Turns one chapter's syntax tree into flowables; headings carry what the TOC and outline need."""

    def __init__(self, width: float, height: float, base: Path, chapter: int):
        self.width, self.height, self.base, self.chapter = width, height, base, chapter
        self.styles = styles()
        self.sections = 0
        self.in_box = False  # headings inside an admonition are small and stay out of the TOC

    # -- inline text -------------------------------------------------------------------------
    def inline(self, node: SyntaxTreeNode) -> str:
        parts = []
        for child in node.children:
            kind = child.type
            if kind == "text":
                parts.append(escape(child.content))
            elif kind in ("softbreak",):
                parts.append(" ")
            elif kind == "hardbreak":
                parts.append("<br/>")
            elif kind == "code_inline":
                parts.append(f'<font face="{MONO}" size="8.5" backColor="#eeeeee">{escape(child.content)}</font>')
            elif kind == "strong":
                parts.append(f"<b>{self.inline(child)}</b>")
            elif kind == "em":
                parts.append(f"<i>{self.inline(child)}</i>")
            elif kind == "link":
                href = str(child.attrs.get("href", ""))
                text = self.inline(child)
                external = href.startswith(("http://", "https://", "mailto:"))
                parts.append(f'<a href={quoteattr(href)} color="{LINK}">{text}</a>' if external else f'<font color="{LINK}">{text}</font>')
            elif kind == "image":
                parts.append(escape(child.content or ""))  # an image inside running text: its alt text
            else:  # html_inline and anything else: the text as written
                parts.append(escape(child.content or ""))
        return "".join(parts)

    def paragraph(self, node: SyntaxTreeNode, style: ParagraphStyle | None = None) -> list:
        inline = node.children[0] if node.children else None
        if inline is not None and all(c.type in ("image", "softbreak") for c in inline.children) and inline.children:
            return [f for c in inline.children if c.type == "image" for f in self.image(c)]
        return [Paragraph(self.inline(inline), style or self.styles["body"])] if inline is not None else []

    # -- blocks ------------------------------------------------------------------------------
    def heading(self, node: SyntaxTreeNode) -> list:
        level = int(node.tag[1])
        text = ATTR_LIST.sub("", self.inline(node.children[0]))  # "Título {#ancora}": attr_list's braces are for the site only
        if self.in_box:
            return [Paragraph(text, self.styles["h4"])]
        paragraph = Paragraph(text, self.styles[f"h{min(level, 4)}"])
        if level <= 2:
            self.sections += 1
            plain = ATTR_LIST.sub("", node.children[0].content)
            paragraph.toc_entry = (level - 1, plain, f"c{self.chapter}s{self.sections}")
        return [paragraph]

    def code(self, text: str, style: ParagraphStyle | None = None, width: float | None = None) -> Preformatted:
        style = style or self.styles["code"]
        columns = int(((width or self.width) - 2 * style.borderPadding) / stringWidth("M", MONO, style.fontSize))
        return CodeBlock(text.rstrip("\n"), style, maxLineLength=columns, newLineChars="↪ ")

    def image(self, node: SyntaxTreeNode) -> list:
        path = (self.base / str(node.attrs.get("src", ""))).resolve()
        if not path.is_file():
            return [Paragraph(f"[imagem em falta: {escape(str(node.attrs.get('src')))}]", self.styles["caption"])]
        pixels_wide, pixels_high = ImageReader(str(path)).getSize()
        width = min(self.width, pixels_wide * 72 / 150)  # figures are saved at 150 dpi
        height = width * pixels_high / pixels_wide
        if height > 0.55 * self.height:
            height = 0.55 * self.height
            width = height * pixels_wide / pixels_high
        caption = self.inline(node) if node.children else escape(node.content or "")
        flowables = [Spacer(1, 4), Image(str(path), width=width, height=height)]
        flowables[-1].figure_path = path
        if caption:
            flowables.append(Paragraph(caption, self.styles["caption"]))
        return flowables

    def table(self, node: SyntaxTreeNode) -> list:
        rows = []
        for section in node.children:  # thead, tbody
            for row in section.children:
                cells = []
                for cell in row.children:
                    style = self.styles["cell_head"] if cell.type == "th" else self.styles["cell"]
                    if "right" in str(cell.attrs.get("style", "")):  # a `---:` column
                        style = ParagraphStyle(f"{style.name}-direita", style, alignment=TA_RIGHT)
                    cells.append(Paragraph(self.inline(cell.children[0]) if cell.children else "", style))
                rows.append(cells)
        columns = max(len(r) for r in rows)
        rows = [r + [Paragraph("", self.styles["cell"])] * (columns - len(r)) for r in rows]
        table = Table(rows, colWidths=column_widths(rows, self.width), repeatRows=1, hAlign="LEFT")
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bdbdbd")),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8f5e9")),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 3),
                                   ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
        return [table, Spacer(1, 8)]

    def bullet_list(self, node: SyntaxTreeNode, ordered: bool) -> list:
        items = []
        for item in node.children:
            content = [f for child in item.children for f in self.block(child)]
            items.append(ListItem(content or [Paragraph("", self.styles["body"])]))
        start = int(node.attrs.get("start", 1)) if ordered else None
        kind = {"bulletType": "1", "start": start, "bulletFormat": "%s."} if ordered else {"bulletType": "bullet", "start": "•"}
        return [ListFlowable(items, leftIndent=14, bulletFontName=SANS, bulletFontSize=9, **kind)]

    def admonition(self, node: SyntaxTreeNode) -> list:
        kind = str(node.meta.get("tag", "note"))
        colour = colors.HexColor(ADMONITION_COLOURS.get(kind, "#1565c0"))
        inner = self.width - 20
        rows = []
        for child in node.children:
            if child.type == "admonition_title":
                title = Paragraph(self.inline(child.children[0]), ParagraphStyle("t", self.styles["admonition_title"], textColor=colour))
                rows.append([title])
            elif child.type in ("fence", "code_block"):
                lines = child.content.rstrip("\n").split("\n")
                for start in range(0, len(lines), CODE_ROWS_PER_CELL):
                    rows.append([self.code("\n".join(lines[start:start + CODE_ROWS_PER_CELL]), width=inner)])
            else:
                saved, self.width, self.in_box = self.width, inner, True
                rows += [[f] for f in self.block(child)]
                self.width, self.in_box = saved, False
        box = Table(rows or [[""]], colWidths=[self.width], hAlign="LEFT")
        box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fafafa")),
                                 ("LINEBEFORE", (0, 0), (0, -1), 3, colour), ("BOX", (0, 0), (-1, -1), 0.3, colour),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 9), ("RIGHTPADDING", (0, 0), (-1, -1), 9)]))
        return [box, Spacer(1, 8)]

    def block(self, node: SyntaxTreeNode) -> list:
        kind = node.type
        if kind == "heading":
            return self.heading(node)
        if kind == "paragraph":
            return self.paragraph(node)
        if kind in ("fence", "code_block"):
            return [self.code(node.content)]
        if kind == "table":
            return self.table(node)
        if kind in ("bullet_list", "ordered_list"):
            return self.bullet_list(node, kind == "ordered_list")
        if kind == "admonition":
            return self.admonition(node)
        if kind == "blockquote":
            return [f for child in node.children for f in (self.paragraph(child, self.styles["quote"])
                                                             if child.type == "paragraph" else self.block(child))]
        if kind == "hr":
            return [HRFlowable(width="100%", thickness=0.5, color=colors.grey, spaceBefore=4, spaceAfter=8)]
        if kind == "html_block":
            text = node.content.strip()
            return [] if text.startswith("<!--") else [Paragraph(escape(text), self.styles["body"])]
        return [f for child in node.children for f in self.block(child)]

    def render(self, tree: SyntaxTreeNode) -> list:
        return [f for child in tree.children for f in self.block(child)]

