"""How a DICOM person name and date are shown to people: "MÜLLER^HANS" as "MÜLLER, Hans", "20181126" as
"2018-11-26". The same rules as the web page's `static/format.js` `personName`, for what the command line and
the PDF reports print. Stored values never change; only what is shown does.
"""

from __future__ import annotations

import re

__all__ = ["person_name", "shown_date"]

_TITLES = {"DR", "DR.", "PROF", "PROF.", "MR", "MRS", "MS", "MISS"}
_LATIN_WORD = re.compile(r"^[A-Za-z\u00C0-\u024F'\u2019-]+$")  # Latin letters (with accents), - and '


def _given_case(text: str) -> str:
    """Given names written all in capitals in their usual case, where that is safe: Latin words longer than
    two letters ("JP" stays an initial, Greek and Cyrillic stay as written)."""
    if text != text.upper() or text == text.lower():
        return text  # mixed case already, or no letters

    def word(w: str) -> str:
        if len(w) <= 2 or not _LATIN_WORD.match(w):
            return w
        return re.sub(r"(^|[-'\u2019])(\w)", lambda m: m.group(1) + m.group(2).upper(), w.lower())

    return " ".join(word(w) for w in text.split())


def person_name(value: str | None) -> str:
    """ "MÜLLER^HANS" → "MÜLLER, Hans"; "SMITH^K^^DR" → "DR SMITH, K". The first (alphabetic) group only;
    never a "^"."""
    if not value:
        return "(no name)"
    parts = [p.strip() for p in value.split("=")[0].split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    if family.upper() in _TITLES and given and not (middle or prefix or suffix):
        return f"{family} {given}"  # "DR^PATEL": a title where the family name goes; read it as written
    first = " ".join(_given_case(p) for p in (given, middle) if p)
    name = " ".join(p for p in (prefix, family) if p) + (f", {first}" if first else "")
    name += f" {suffix}" if suffix else ""
    return name.strip() or value.replace("^", " ").strip() or "(no name)"


def shown_date(value: str | None) -> str:
    """A DICOM date (YYYYMMDD) as 2018-11-26; anything else as it is."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""
