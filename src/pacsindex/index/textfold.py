"""Unicode folding shared by the index writer and the search: any letter case, any alphabet, names and IDs
as people type them.

`fold` is NFKC + casefold, so "MÜLLER" and "müller", "ΠΑΠΑΔΌΠΟΥΛΟΣ" and "Παπαδόπουλος" meet. The stored
search text also carries an accent-free copy ("muller") and a German transliteration ("mueller",
"schaefer"), so a receptionist finds "MÜLLER" whichever way she types it. DICOM's "^" (name component) and
"=" (name group) are word breaks; the ideographic and phonetic groups of a person name are also kept with
their components run together ("山田太郎"), as the name is written in that script.

A query (`query_units`) breaks at punctuation as well as spaces, so the name exactly as the page shows it
("MÜLLER, HANS", "van der merwe, pieter") finds the patient; digit groups joined by punctuation
("800101-5009-087") match joined (the search text holds every ID's digits run together) or group by group.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "query_units", "query_words", "search_text", "series_search_text", "strip_accents"]

_BREAKS = str.maketrans({"^": " ", "=": " ", "\\": " ", "\t": " ", "\n": " ", "\r": " "})
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_QUERY_BREAK = re.compile(r"[\W_]+")
_NON_DIGITS = re.compile(r"[^0-9]")
# A unit of a query: alternatives, each a list of words that must all occur.
Unit = list[list[str]]


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().translate(_BREAKS)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def german(folded: str) -> str:
    """ä → ae, ö → oe, ü → ue (ß is already ss after casefold), as German names are typed without them."""
    return folded.translate(_GERMAN)


def search_text(*fields: str | None) -> str:
    """The text a series is found by: folded fields, plus an accent-free copy and a German transliteration
    where they differ."""
    folded = " ".join(" ".join(fold(f).split()) for f in fields if f)
    copies = [folded]
    for copy in (strip_accents(folded), strip_accents(german(folded))):
        if copy not in copies:
            copies.append(copy)
    return " " + " | ".join(copies) + " "


def _name_groups(name: str | None) -> list[str]:
    """The ideographic and phonetic groups of a person name with their components run together."""
    if not name or "=" not in name:
        return []
    return ["".join(g.split("^")) for g in name.split("=")[1:] if g.strip("^ ")]


def _id_digits(*values: str | None) -> list[str]:
    """IDs with their spaces and hyphens removed ("800101 5009 087" → "8001015009087")."""
    out = []
    for value in values:
        if value:
            digits = _NON_DIGITS.sub("", value)
            if len(digits) >= 6 and digits != value:
                out.append(digits)
    return out


def series_search_text(
    PatientName: str | None,
    PatientID: str | None,
    OtherPatientIDs: str | None,
    AccessionNumber: str | None,
    StudyDescription: str | None,
    SeriesDescription: str | None,
    ReferringPhysicianName: str | None,
) -> str:
    """The search text of one series, from the fields the index keeps (so it can be rebuilt from them)."""
    return search_text(
        PatientName,
        *_name_groups(PatientName),
        PatientID,
        OtherPatientIDs,
        AccessionNumber,
        StudyDescription,
        SeriesDescription,
        ReferringPhysicianName,
        *_name_groups(ReferringPhysicianName),
        *_id_digits(PatientID, OtherPatientIDs),
    )


def _alternatives(word: str) -> Unit:
    alts = [[word]]
    for other in (strip_accents(word), strip_accents(german(word))):
        if [other] not in alts:
            alts.append([other])
    return alts


def query_units(query: str) -> list[Unit]:
    """A query as units that must all match; a unit matches when all words of one of its alternatives
    occur. Punctuation is a word break; "800101-5009-087" is one unit: "8001015009087", or its groups."""
    units: list[Unit] = []
    for token in fold(query).split():
        words = [w for w in _QUERY_BREAK.split(token) if w]
        if len(words) > 1 and all(w.isdigit() for w in words):
            units.append([["".join(words)], words])
            continue
        units.extend(_alternatives(w) for w in words)
    return units


def query_words(query: str) -> list[str]:
    """The folded words of a query (each unit's first alternative)."""
    return [w for unit in query_units(query) for w in unit[0]]
