"""The access report as a PDF a practice can hand to the patient (fpdf2).

Names are printed as people write them, in any alphabet: a Unicode TrueType font is embedded (DejaVu Sans
on Debian/Ubuntu, Arial or Segoe UI on Windows). Without one the report falls back to the PDF core font,
which has only Latin-1 letters; other characters then print as "?", never as a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from pacsindex.dicom import person_name
from pacsindex.ops.reports import AccessReport

__all__ = ["report_pdf"]

FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
    Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts" / "arial.ttf",
    Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts" / "segoeui.ttf",
)
WIDTHS = (34, 28, 24, 38, 34, 119)  # mm, landscape A4: time, who, address, what, series, detail


def _font() -> Path | None:
    return next((p for p in FONTS if p.is_file()), None)


def report_pdf(report: AccessReport, practice: str = "") -> bytes:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_title("Access report")
    pdf.set_creator("pacsindex")
    font = _font()
    if font is not None:
        pdf.add_font("Report", "", str(font))
        family = "Report"

        def text(value: str) -> str:
            return value
    else:
        family = "Helvetica"

        def text(value: str) -> str:
            return value.encode("latin-1", "replace").decode("latin-1")

    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font(family, size=16)
    pdf.cell(
        0,
        10,
        text("Access to your records" + (f" at {practice}" if practice else "")),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font(family, size=10)
    names = " / ".join(person_name(n) for n in report.PatientNames)
    pdf.cell(
        0, 6, text(f"Patient: {names}   ID: {report.PatientID or '(none)'}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.cell(
        0,
        6,
        text(f"Report made {report.made_at} (times in {report.timezone})"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.multi_cell(
        0,
        5,
        text(
            "Every time staff, a viewer or a recipient of a share link found, opened, shared, downloaded or "
            "sent your images, as recorded in the practice's audit log (POPIA section 23)."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    if not report.accesses:
        pdf.cell(0, 8, text("No access to these records is recorded."), new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
    pdf.set_font(family, size=8)
    with pdf.table(
        col_widths=WIDTHS,
        text_align="LEFT",
        line_height=4.5,
        first_row_as_headings=True,
        headings_style=FontFace(emphasis="", fill_color=(225, 225, 225)),
    ) as table:
        table.row([text(h) for h in ("Time", "Who", "Address", "What", "Series", "Details")])
        for a in report.accesses:
            table.row(
                [text(v) for v in (a.at.replace("T", " "), a.who, a.client, a.what, a.series, a.detail)]
            )
    return bytes(pdf.output())
