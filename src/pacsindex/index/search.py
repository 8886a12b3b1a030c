"""A search query → parameterised SQL over the index.

Matching: every word of the query (folded: any letter case, any alphabet, accents optional) must occur in a
series' search text, which holds PatientName, PatientID, OtherPatientIDs, AccessionNumber, StudyDescription
and SeriesDescription. Words match anywhere in those fields and in any order, so "hans müller" finds
`MÜLLER^HANS` and "ller" finds it too. Filters: modality, study date range.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from datetime import date
from typing import Any, Literal

from pacsindex.errors import InvalidQuery
from pacsindex.index.store import SEARCH_SELECT, row_dict
from pacsindex.index.textfold import Unit, query_units

MAX_LIMIT = 1000
MAX_QUERY_WORDS = 16
# The most matches a plan probe reads; deeper pages than that are sorted without one.
MAX_PROBE = 5_000
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
_MODALITY = re.compile(r"^[A-Za-z0-9]{1,16}$")
# The page order; series_order (StudyDate, study_id, SeriesNumber, id) gives its first key, and SQLite sorts
# only the series of one study date at a time when it walks that index.
ORDER = "s.StudyDate DESC, s.study_id, s.SeriesNumber, s.id"
Plan = Literal["auto", "sorted", "walk"]
# A condition besides the full-text match and dates: its SQL, its parameters, and whether it is a study
# filter.
Condition = tuple[str, tuple[str, ...], bool]


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
    plan: Plan = "auto",
) -> list[dict[str, Any]]:
    """Series matching the query and filters, newest study first.

    `plan` picks how the page is found, never what it holds: "sorted" takes every series matching the
    words and sorts them by study date; "walk" reads the series newest first and tests each until the page
    is full; "auto" (the default) walks when the words are common enough for that to be cheaper. The other
    two are for tests and benchmarks.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise InvalidQuery("offset must not be negative")
    match, conditions, lo, hi = parse_filters(
        query,
        modality=modality,
        date_from=date_from,
        date_to=date_to,
        medical_aid=medical_aid,
        hospital=hospital,
        hospital_group=hospital_group,
    )
    # The probe and the page read one snapshot, so a batch an indexing run commits in between is either in
    # both or in neither.
    snapshot = plan == "auto" and bool(match) and not conn.in_transaction
    if snapshot:
        conn.execute("BEGIN")
    try:
        return _page(conn, match, conditions, lo, hi, limit, offset, plan)
    finally:
        if snapshot:
            conn.execute("COMMIT")


Filters = tuple[str, list[Condition], str | None, str | None]


def parse_filters(
    query: str = "",
    *,
    modality: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    medical_aid: str | None = None,
    hospital: str | None = None,
    hospital_group: str | None = None,
) -> Filters:
    """The query and filters, checked: the full-text MATCH text, the other conditions on `series s`, and
    the study date range as DICOM DA text. InvalidQuery, in words, for anything unusable."""
    units = query_units(query or "")
    if len(units) > MAX_QUERY_WORDS:
        raise InvalidQuery(f"a search takes at most {MAX_QUERY_WORDS} words")
    match, conditions = _unit_match(units)
    if modality:
        if not _MODALITY.match(modality):
            raise InvalidQuery(f"modality must be a DICOM modality code such as CT or MR, not {modality!r}")
        conditions.append(("s.Modality = ?", (modality.upper(),), False))
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
            conditions.append((f"s.study_id IN ({studies} COLLATE NOCASE)", (value,), True))
    lo = parse_date(date_from, "date_from")
    hi = parse_date(date_to, "date_to")
    if lo and hi and lo > hi:
        raise InvalidQuery(
            f"the study date from ({_shown(lo)}) is after the study date to ({_shown(hi)}): "
            "swap them, or clear one"
        )
    return match, conditions, lo, hi


def _shown(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:]}"


def series_where(filters: Filters) -> tuple[str, list[Any]]:
    """A WHERE clause over `series s` (empty when nothing narrows) and its parameters."""
    match, conditions, lo, hi = filters
    where: list[str] = []
    params: list[Any] = []
    if match:
        where.append("s.id IN (SELECT rowid FROM series_fts WHERE series_fts MATCH ?)")
        params.append(match)
    for sql, values, _ in conditions:
        where.append(sql)
        params.extend(values)
    if lo:
        where.append("s.StudyDate >= ?")
        params.append(lo)
    if hi:
        where.append("s.StudyDate <= ?")
        params.append(hi)
    return ("WHERE " + " AND ".join(where)) if where else "", params


def _unit_match(units: list[Unit]) -> tuple[str, list[Condition]]:
    """The FTS5 MATCH expression for the units whose words all have three or more characters (the trigram
    index finds those), and an `instr` condition for each other unit."""
    match: list[str] = []
    conditions: list[Condition] = []
    for unit in units:
        if all(len(w) >= 3 for alt in unit for w in alt):
            alts = [" AND ".join('"' + w.replace('"', '""') + '"' for w in alt) for alt in unit]
            match.append(alts[0] if len(alts) == 1 else "(" + " OR ".join(f"({a})" for a in alts) + ")")
            continue
        tests = ["(" + " AND ".join("instr(s.search_text, ?) > 0" for _ in alt) + ")" for alt in unit]
        conditions.append(("(" + " OR ".join(tests) + ")", tuple(w for alt in unit for w in alt), False))
    return " AND ".join(match), conditions


def _page(
    conn: sqlite3.Connection,
    match: str,
    conditions: list[Condition],
    lo: str | None,
    hi: str | None,
    limit: int,
    offset: int,
    plan: Plan,
) -> list[dict[str, Any]]:
    """The page `plan` finds ("auto" chooses here), joined to its studies and patients."""
    hits: list[int] | None = None  # every series the words match, when a probe found them all
    if plan == "auto":
        plan, hits = _choose_plan(conn, match, conditions, offset + limit) if match else ("sorted", None)
    # "+" keeps SQLite from driving the walk by the rowid or study lists: the page-order index drives it.
    walk = "+" if plan == "walk" else ""
    where: list[str] = []
    params: list[Any] = []
    if hits is not None:
        where.append("s.id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(hits))
    elif match:
        where.append(f"{walk}s.id IN (SELECT rowid FROM series_fts WHERE series_fts MATCH ?)")
        params.append(match)
    for sql, values, on_studies in conditions:
        where.append(walk + sql if on_studies else sql)
        params.extend(values)
    if lo:
        where.append("s.StudyDate >= ?")
        params.append(lo)
    if hi:
        where.append("s.StudyDate <= ?")
        params.append(hi)
    # Pick and order the page on the series table alone, then join studies and patients for that page only.
    page = f"SELECT s.id FROM series s {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {ORDER}"
    sql = f"{SEARCH_SELECT} JOIN ({page} LIMIT ? OFFSET ?) AS hit ON hit.id = s.id ORDER BY {ORDER}"
    params += [limit, offset]
    return [row_dict(r) for r in conn.execute(sql, params)]


def _choose_plan(
    conn: sqlite3.Connection, match: str, conditions: list[Condition], need: int
) -> tuple[Plan, list[int] | None]:
    """Walk when the words match so many series that reading the series newest first (by the series_order
    index) and testing each fills the page sooner than sorting every match; else sort, with the matches
    when the probe found them all (so the full-text query is not run twice).

    Sorting costs about a row lookup per match; the walk reads about need × series / matches index entries.
    They meet near √(need × series) matches, so the probe takes the matches' first rowids up to a third of
    that. If it gets them all, the words are rare. Otherwise the short words and the modality (which can
    thin out the matches) are tried on that sample, and a quarter of it must pass. Study filters (medical
    aid, hospital, group) keep the sorted plan: their matches can be too sparse for a walk.
    """
    series = conn.execute("SELECT max(id) FROM series").fetchone()[0] or 0
    enough = max(need, math.isqrt(need * series) // 3)
    if enough > MAX_PROBE:
        return "sorted", None
    probe = "SELECT rowid FROM series_fts WHERE series_fts MATCH ? LIMIT ?"
    sample = [r[0] for r in conn.execute(probe, [match, enough])]
    if len(sample) < enough:
        return "sorted", sample
    if any(on_studies for _, _, on_studies in conditions):
        return "sorted", None
    if conditions:
        tests = " AND ".join(sql for sql, _, _ in conditions)
        count = f"SELECT count(*) FROM series s WHERE s.id IN (SELECT value FROM json_each(?)) AND {tests}"
        values = [value for _, given, _ in conditions for value in given]
        if conn.execute(count, [json.dumps(sample), *values]).fetchone()[0] * 4 < len(sample):
            return "sorted", None
    return "walk", None
