"""A search query → parameterised SQL over the index.

Matching: every word of the query (folded: any letter case, any alphabet, accents optional) must occur in a
series' search text, which holds PatientName, PatientID, OtherPatientIDs, AccessionNumber, StudyDescription
and SeriesDescription. Words match anywhere in those fields and in any order, so "hans müller" finds
`MÜLLER^HANS` and "ller" finds it too. Filters: modality, study date range.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from typing import Any

from pacsindex.errors import InvalidQuery
from pacsindex.store import SEARCH_SELECT, row_dict
from pacsindex.textfold import query_words

MAX_LIMIT = 1000
MAX_QUERY_WORDS = 16
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
_MODALITY = re.compile(r"^[A-Za-z0-9]{1,16}$")


def parse_date(text: str | None, name: str) -> str | None:
    """A date as YYYYMMDD or YYYY-MM-DD → DICOM DA text; InvalidQuery for anything else."""
    if text is None or text == "":
        return None
    m = _DATE.match(text.strip())
    if not m:
        raise InvalidQuery(f"{name} must be a date as YYYY-MM-DD or YYYYMMDD, not {text!r}")
    try:
        date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise InvalidQuery(f"{name} {text!r} is not a real date") from exc
    return m[1] + m[2] + m[3]


def search(
    conn: sqlite3.Connection,
    query: str = "",
    *,
    modality: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    medical_aid: str | None = None,
    hospital: str | None = None,
    hospital_group: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Series matching the query and filters, newest study first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise InvalidQuery("offset must not be negative")
    words = query_words(query or "")
    if len(words) > MAX_QUERY_WORDS:
        raise InvalidQuery(f"a search takes at most {MAX_QUERY_WORDS} words")
    where: list[str] = []
    params: list[Any] = []
    # Words of three or more characters go through the trigram index; shorter ones are checked directly.
    long_words = [w for w in words if len(w) >= 3]
    if long_words:
        where.append("s.id IN (SELECT rowid FROM series_fts WHERE series_fts MATCH ?)")
        params.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in long_words))
    for word in words:
        if len(word) < 3:
            where.append("instr(s.search_text, ?) > 0")
            params.append(word)
    if modality:
        if not _MODALITY.match(modality):
            raise InvalidQuery(f"modality must be a DICOM modality code such as CT or MR, not {modality!r}")
        where.append("s.Modality = ?")
        params.append(modality.upper())
    filters = {
        "medical_aid": (
            medical_aid,
            "SELECT st.id FROM studies st JOIN patients p ON p.id = st.patient_id WHERE p.medical_aid = ?",
        ),
        "hospital": (hospital, "SELECT id FROM studies WHERE hospital = ?"),
        "hospital_group": (hospital_group, "SELECT id FROM studies WHERE hospital_group = ?"),
    }
    for name, (value, studies) in filters.items():
        if value:
            if len(value) > 200:
                raise InvalidQuery(f"{name} is too long")
            where.append(f"s.study_id IN ({studies} COLLATE NOCASE)")
            params.append(value)
    lo = parse_date(date_from, "date_from")
    hi = parse_date(date_to, "date_to")
    if lo and hi and lo > hi:
        raise InvalidQuery("date_from is after date_to")
    if lo:
        where.append("s.StudyDate >= ?")
        params.append(lo)
    if hi:
        where.append("s.StudyDate <= ?")
        params.append(hi)
    # Pick and order the page on the series table alone, then join studies and patients for that page only.
    order = "s.StudyDate DESC, s.study_id, s.SeriesNumber, s.id"
    page = f"SELECT s.id FROM series s {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order}"
    sql = f"{SEARCH_SELECT} JOIN ({page} LIMIT ? OFFSET ?) AS hit ON hit.id = s.id ORDER BY {order}"
    params += [limit, offset]
    return [row_dict(r) for r in conn.execute(sql, params)]
