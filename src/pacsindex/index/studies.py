"""The worklist: search results one row per study, and one study with its series.

A study is listed when any of its series matches the query and filters (the same matching as
`search.search`, so "müller ct" finds Hans Müller's CT studies); the row then describes the whole study:
its modalities, how many series and images it has, whether a first index is still reading some of them,
the patient's age at the study, the referring doctor, the hospital and the medical aid. Pages are counted
in studies, and `total` says how many match, so the page can offer "N new results" while indexing adds
studies.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from typing import Any, Literal

from pacsindex.errors import InvalidQuery
from pacsindex.index.search import parse_filters, series_where

__all__ = [
    "MAX_STUDY_PAGE",
    "SORTS",
    "STUDY_KEY_PATTERN",
    "age_at",
    "count_studies",
    "get_study",
    "search_studies",
]

MAX_STUDY_PAGE = 200
Sort = Literal["date", "date_asc", "name", "name_desc"]
SORTS: dict[str, str] = {
    "date": "st.StudyDate DESC, st.StudyTime DESC, st.id DESC",
    "date_asc": "st.StudyDate ASC, st.StudyTime ASC, st.id ASC",
    "name": "p.PatientName COLLATE NOCASE ASC, st.StudyDate DESC, st.id DESC",
    "name_desc": "p.PatientName COLLATE NOCASE DESC, st.StudyDate DESC, st.id DESC",
}
# A study's key in URLs is its row number in the index: the stored study_key holds the patient's ID and name
# (a study is keyed by patient and StudyInstanceUID), which must never appear in an address or a log line.
# Any printable text without "/" is accepted, and what is not a row number is simply not found.
STUDY_KEY_PATTERN = r"^[^/\x00-\x1f\x7f]{1,130}$"
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")

_STUDY_COLUMNS = """
    st.id AS study_no, st.StudyInstanceUID, st.StudyDate, st.StudyTime, st.StudyDescription,
    st.AccessionNumber,
    st.ReferringPhysicianName, st.InstitutionName, st.hospital, st.hospital_group,
    p.PatientName, p.PatientID, p.PatientBirthDate, p.PatientSex, p.sa_id, p.sa_id_issues, p.medical_aid,
    (SELECT group_concat(m, ' ') FROM (SELECT DISTINCT x.Modality AS m FROM series x
        WHERE x.study_id = st.id AND x.Modality IS NOT NULL AND x.Modality != '' ORDER BY m)) AS modalities,
    (SELECT count(*) FROM series x WHERE x.study_id = st.id) AS series_count,
    EXISTS (SELECT 1 FROM studies o WHERE o.StudyInstanceUID = st.StudyInstanceUID
        AND o.patient_id != st.patient_id) AS study_uid_shared,
    (SELECT coalesce(sum(x.file_count), 0) FROM series x WHERE x.study_id = st.id) AS image_count,
    EXISTS (SELECT 1 FROM series x WHERE x.study_id = st.id AND x.filling = 1) AS filling
"""


def search_studies(
    conn: sqlite3.Connection,
    query: str = "",
    *,
    sort: str = "date",
    limit: int = 50,
    offset: int = 0,
    **filters: str | None,
) -> dict[str, Any]:
    """`{"items": [...], "total": N}`: the page of studies matching the query and filters (medical_aid,
    hospital, hospital_group, modality, date_from, date_to), in `sort` order, and how many match in all."""
    if sort not in SORTS:
        raise InvalidQuery(f"sort must be one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_STUDY_PAGE:
        raise InvalidQuery(f"limit must be between 1 and {MAX_STUDY_PAGE}")
    if offset < 0:
        raise InvalidQuery("offset must not be negative")
    where, params = series_where(parse_filters(query, **filters))
    hits = f"SELECT DISTINCT s.study_id AS id FROM series s {where}"
    sql = (
        f"SELECT {_STUDY_COLUMNS} FROM ({hits}) AS hit JOIN studies st ON st.id = hit.id "
        f"JOIN patients p ON p.id = st.patient_id ORDER BY {SORTS[sort]} LIMIT ? OFFSET ?"
    )
    # The count and the page read one snapshot, so a batch committed in between is in both or neither.
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        total = conn.execute(f"SELECT count(*) FROM ({hits})", params).fetchone()[0]
        rows = [_study(r) for r in conn.execute(sql, [*params, limit, offset])]
    finally:
        if own:
            conn.execute("COMMIT")
    return {"items": rows, "total": total}


def count_studies(conn: sqlite3.Connection, query: str = "", **filters: str | None) -> int:
    """How many studies match, without reading them: the page asks this while indexing runs."""
    where, params = series_where(parse_filters(query, **filters))
    sql = f"SELECT count(*) FROM (SELECT DISTINCT s.study_id FROM series s {where})"
    return int(conn.execute(sql, params).fetchone()[0])


def get_study(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    """One study (by its StudyInstanceUID, or its key when it has none) with its series in series-number
    order, or None."""
    if not key.isdigit() or len(key) > 18:
        return None
    row = conn.execute(
        f"SELECT st.id AS study_id, {_STUDY_COLUMNS} FROM studies st "
        "JOIN patients p ON p.id = st.patient_id WHERE st.id = ?",
        (int(key),),
    ).fetchone()
    if row is None:
        return None
    study = _study(row)
    study["series"] = [
        dict(r)
        for r in conn.execute(
            """SELECT SeriesKey, SeriesInstanceUID, SeriesNumber, SeriesDescription, Modality,
                      BodyPartExamined, file_count, total_size, filling = 1 AS filling
               FROM series WHERE study_id = ? ORDER BY SeriesNumber IS NULL, SeriesNumber, id""",
            (row["study_id"],),
        )
    ]
    return study


def _study(row: sqlite3.Row) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys() if k != "study_id"}
    out["StudyKey"] = str(out.pop("study_no"))
    out["study_uid_shared"] = bool(out["study_uid_shared"])
    out["filling"] = bool(out["filling"])
    out["modalities"] = (row["modalities"] or "").split()
    out["age"] = age_at(row["PatientBirthDate"], row["StudyDate"])
    return out


def age_at(birth: str | None, on: str | None) -> str | None:
    """The patient's age on the study date as people say it: "34 y", "7 mo" under two, "12 d" under a
    month; None when a date is missing or not a real date."""
    b, d = _day(birth), _day(on)
    if b is None or d is None or d < b:
        return None
    years = d.year - b.year - ((d.month, d.day) < (b.month, b.day))
    if years >= 2:
        return f"{years} y"
    months = (d.year - b.year) * 12 + d.month - b.month - (d.day < b.day)
    if months >= 1:
        return f"{months} mo"
    return f"{(d - b).days} d"


def _day(text: str | None) -> date | None:
    m = _DA.match((text or "").strip())
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
