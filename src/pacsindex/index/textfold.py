"""Unicode folding shared by the index writer and the search: any letter case, any alphabet.

`fold` is NFKC + casefold, so "MÜLLER" and "müller", "ΠΑΠΑΔΌΠΟΥΛΟΣ" and "Παπαδόπουλος" meet. The stored
search text also carries an accent-free copy, so a receptionist typing "muller" still finds "MÜLLER".
DICOM's "^" (name component) and "=" (name group) are word breaks.
"""

from __future__ import annotations

import unicodedata

_BREAKS = str.maketrans({"^": " ", "=": " ", "\\": " ", "\t": " ", "\n": " ", "\r": " "})


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().translate(_BREAKS)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_text(*fields: str | None) -> str:
    """The text a series is found by: folded fields, plus an accent-free copy where it differs."""
    folded = " ".join(" ".join(fold(f).split()) for f in fields if f)
    plain = strip_accents(folded)
    return f" {folded} " if plain == folded else f" {folded} | {plain} "


def query_words(query: str) -> list[str]:
    """The folded words of a query; each one must match somewhere for a series to be found."""
    return fold(query).split()
