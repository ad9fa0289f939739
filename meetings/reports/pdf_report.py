"""The meeting report as a PDF, made with fpdf2.

Why fpdf2: it is pure Python (fonttools, Pillow, defusedxml; no system
libraries, unlike WeasyPrint's pango), embeds TrueType subsets with a
ToUnicode map (so the text can be extracted and searched), and falls back
from one font to the next per character (`set_fallback_fonts`), which is
what mixed-script meetings need. reportlab would do the layout as well, but
it has no per-glyph fallback, so every CJK or emoji run would have to be
split by hand.

The fonts ship in `fonts/` (see its README for coverage and licences):
DejaVu Sans for Latin, Greek and Cyrillic, Droid Sans Fallback for CJK,
Noto Emoji for emoji. A character none of them has is drawn as the
replacement of the last fallback, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from meetings.reports.content import ACTION_ITEM_COLUMNS, Item, Report

FONTS = Path(__file__).resolve().parent / "fonts"
BODY = "dejavu"
FALLBACKS = {"droid": "DroidSansFallbackFull.ttf", "notoemoji": "NotoEmoji-Regular.ttf"}


class _ReportPDF(FPDF):
    def __init__(self, title: str, characters: set[str]) -> None:
        """`characters`: every character the report will draw; fallback fonts are
        loaded (and embedded) only when some of them need one."""
        super().__init__(format="A4")
        self.report_title = title
        self._widths: dict[str, dict[str, float]] = {}
        self.add_font(BODY, "", FONTS / "DejaVuSans.ttf")
        self.add_font(BODY, "B", FONTS / "DejaVuSans-Bold.ttf")
        missing = {ord(c) for c in characters} - set(self.fonts[BODY].cmap)  # type: ignore[union-attr]
        loaded = []
        for name, filename in FALLBACKS.items():
            if missing:
                # The fallbacks have no bold face: bold text falls back to regular.
                self.add_font(name, "", FONTS / filename)
                loaded.append(name)
                missing -= set(self.fonts[name].cmap)  # type: ignore[union-attr]
        self.fallbacks = tuple(loaded)
        if loaded:
            self.set_fallback_fonts(loaded, exact_match=False)
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(title)
        self.set_creator("Meeting Intelligence Platform")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(BODY, "", 8)
        self.set_text_color(120)
        self.cell(0, 6, f"{self.report_title} · page {self.page_no()}", align="C")
        self.set_text_color(0)

    def heading(self, text: str, size: float = 14) -> None:
        self.ln(3)
        self.set_font(BODY, "B", size)
        self.multi_cell(0, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)
        self.set_font(BODY, "", 10)

    def line_of_text(self, text: str, height: float = 5) -> None:
        """`text` wrapped to the page width, one cell per line.

        fpdf2's multi_cell re-measures the whole line at every space, which
        made a three-hour transcript take 9 s; measuring each character once
        from the fonts' width tables keeps it near 1 s.
        """
        for line in self._wrap(text, self.epw):
            self.cell(0, height, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _char_width(self, char: str) -> float:
        """Width of `char` in font units at the current font (or the fallback that has it)."""
        widths = self._widths.get(self.current_font.fontkey)  # type: ignore[union-attr]
        if widths is None:
            widths = self._widths[self.current_font.fontkey] = {}  # type: ignore[union-attr]
        width = widths.get(char)
        if width is None:
            code = ord(char)
            width = self.current_font.cw[code]  # type: ignore[union-attr]
            if code not in self.current_font.cmap:  # type: ignore[union-attr]
                for name in self.fallbacks:
                    font = self.fonts[name]
                    if code in font.cmap:  # type: ignore[union-attr]
                        width = font.cw[code]  # type: ignore[union-attr]
                        break
            widths[char] = width
        return width

    def _wrap(self, text: str, max_width_mm: float) -> list[str]:
        limit = max_width_mm * self.k * 1000 / self.font_size_pt  # in font units
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line, width = "", 0.0
            for word in paragraph.split(" "):
                piece = f" {word}" if line else word
                piece_width = sum(self._char_width(c) for c in piece)
                if width + piece_width <= limit:
                    line, width = line + piece, width + piece_width
                    continue
                if line:
                    lines.append(line)
                line, width = "", 0.0
                for char in word:  # a word wider than the line (or CJK text) breaks anywhere
                    char_width = self._char_width(char)
                    if line and width + char_width > limit:
                        lines.append(line)
                        line, width = "", 0.0
                    line, width = line + char, width + char_width
            lines.append(line)
        return lines


def _item_line(item: Item) -> str:
    parts = [item.text]
    extra = [f"owner: {item.owner}" if item.owner else "", f"due: {item.due}" if item.due else ""]
    extra = [e for e in extra if e]
    if extra:
        parts.append(f"({', '.join(extra)})")
    if item.at:
        parts.append(f"[{item.at}]")
    return "• " + " ".join(parts)


def _characters(report: Report) -> set[str]:
    texts = [report.title, report.summary, *(s.name for s in report.speakers)]
    texts += [s.title for s in report.sections]
    for item in [
        *report.action_items,
        *report.decisions,
        *(i for s in report.sections for i in s.items),
    ]:
        texts += [item.text, item.owner]
    for turn in report.transcript:
        texts += [turn.speaker, turn.text]
    return set("".join(texts)) | set("•·—")


def render_pdf(report: Report) -> bytes:
    pdf = _ReportPDF(report.title, _characters(report))
    pdf.add_page()
    pdf.heading(report.title, 18)
    pdf.line_of_text(
        f"Date: {report.date:%Y-%m-%d %H:%M} UTC · Duration: {report.duration or 'unknown'}"
    )
    if report.degraded:
        pdf.line_of_text(f"Not available: {', '.join(report.degraded)}")

    pdf.heading("Speakers")
    for speaker in report.speakers:
        pdf.line_of_text(f"• {speaker.name}: {speaker.share:.0%} of talk time")

    pdf.heading("Summary")
    pdf.line_of_text(report.summary or "No summary.")

    for section in report.sections:
        pdf.heading(section.title)
        for item in section.items:
            pdf.line_of_text(_item_line(item))

    pdf.heading("Action items")
    if report.action_items:
        with pdf.table(
            col_widths=(95, 40, 25, 20),
            text_align="LEFT",
            line_height=5,
            first_row_as_headings=True,
        ) as table:
            for values in (
                ACTION_ITEM_COLUMNS,
                *((item.text, item.owner, item.due, item.at) for item in report.action_items),
            ):
                row = table.row()
                for value in values:
                    row.cell(value)
    else:
        pdf.line_of_text("None.")

    pdf.heading("Decisions")
    for item in report.decisions:
        pdf.line_of_text(_item_line(item))
    if not report.decisions:
        pdf.line_of_text("None.")

    pdf.heading("Transcript")
    for turn in report.transcript:
        pdf.set_font(BODY, "B", 9)
        pdf.line_of_text(f"[{turn.at}] {turn.speaker}", 4.5)
        pdf.set_font(BODY, "", 9.5)
        pdf.line_of_text(turn.text, 4.8)
        pdf.ln(1)
    return bytes(pdf.output())
