"""QIDO-RS over the index: DICOMweb query parameters → parameterised SQL → results in the DICOM JSON model
(PS3.18 §8.3.4 and Annex F). Retrieval (WADO-RS) is in `dicomweb/retrieve.py`. No web framework here: the
web layer (`web/dicomweb.py`) hands in the query parameters as (name, value) pairs.

Matching (the index holds one row per study and series, and one per file):
- PatientName: `*` and `?` wildcards; any letter case and accents optional, like the staff search
  ("muller*" finds `MÜLLER^HANS`); `^` and spaces are the same. Without wildcards the whole name must match.
- PatientID, AccessionNumber, StudyID: exact, or with `*` / `?` wildcards (case-sensitive, as DICOM says).
- StudyDescription, SeriesDescription, ReferringPhysicianName: wildcards, any letter case.
- StudyDate, PatientBirthDate: `YYYYMMDD`, `YYYYMMDD-YYYYMMDD`, `-YYYYMMDD`, `YYYYMMDD-`.
- StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID: one UID or a list (`,` or `\\`).
- ModalitiesInStudy (and Modality): one code or a list; a study matches when any of its series does.
  Series-level keys in a study query match studies having such a series (relational matching).
- SeriesNumber, InstanceNumber: a whole number. PatientSex: exact.
- `limit` (at most MAX_LIMIT; more is capped, with a Warning), `offset`, `includefield` (keywords or tags,
  comma-separated, repeated, or `all`); `fuzzymatching` is accepted and ignored. Other DICOM attributes are
  ignored with a Warning (the index does not hold them); a parameter that is no DICOM keyword or tag, a
  repeated key, or a malformed value is an InvalidQuery (400).

What DICOMweb shows: the index groups files into series by SeriesInstanceUID, with fallbacks for files
that lack it (StudyInstanceUID + SeriesNumber, or the folder). Those fallback series, studies without a
StudyInstanceUID and files without a SOPInstanceUID cannot be named by UID, so DICOMweb leaves them out
(the staff search still shows them). Instance counts are the index's file counts, which include any copy
of the same instance kept in two folders.
"""

from __future__ import annotations

import fnmatch
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from pacsindex.dicom.headers import series_key
from pacsindex.dicomweb.dicomjson import (
    ATTRS,
    BY_KEYWORD,
    EVERY_LEVEL,
    LEVELS,
    OWN_LEVEL_ONLY,
    SERIES,
    STUDY,
    Attr,
    to_json,
)
from pacsindex.errors import InvalidQuery, NotFound
from pacsindex.index.textfold import fold, strip_accents

MAX_LIMIT = 1000
MAX_OFFSET = 100_000_000
MAX_VALUE = 256
CONTROL_PARAMS = frozenset({"limit", "offset", "includefield", "fuzzymatching", "charset"})
_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
_DATE = re.compile(r"^\d{8}$")
_CODE = re.compile(r"^[A-Z0-9 _]{1,16}$")
_INT = re.compile(r"^[+-]?\d{1,10}$")


_STUDY_COLS = """st.StudyInstanceUID, st.StudyDate, st.StudyTime, st.AccessionNumber,
    st.ReferringPhysicianName, st.StudyDescription, st.StudyID, st.InstitutionName,
    p.PatientName, p.PatientID, p.IssuerOfPatientID, p.PatientBirthDate, p.PatientSex, p.OtherPatientIDs"""
_SERIES_COLS = """s.SeriesInstanceUID, s.SeriesNumber, s.SeriesDescription, s.Modality, s.BodyPartExamined,
    s.SeriesDate, s.Manufacturer, s.StationName, s.file_count AS NumberOfSeriesRelatedInstances"""
_FROM = "series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id"
_NAMED = "s.SeriesInstanceUID IS NOT NULL AND st.StudyInstanceUID IS NOT NULL"


@dataclass(frozen=True)
class Query:
    """A parsed QIDO-RS request at one level, scoped by the UIDs in its path."""

    level: str
    study_uid: str | None = None
    series_uid: str | None = None
    filters: tuple[tuple[Attr, str], ...] = ()
    include: frozenset[str] = frozenset()  # keywords; "all" for every one
    limit: int = MAX_LIMIT
    offset: int = 0
    warnings: tuple[str, ...] = ()

    def audit_detail(self) -> dict[str, Any]:
        """What the audit log keeps of this query: the level, the scope and the matching keys asked."""
        detail: dict[str, Any] = {"level": self.level}
        if self.study_uid:
            detail["StudyInstanceUID"] = self.study_uid
        if self.series_uid:
            detail["SeriesInstanceUID"] = self.series_uid
        detail.update({a.keyword: v for a, v in self.filters})
        if self.offset:
            detail["offset"] = self.offset
        return detail


@dataclass
class Result:
    items: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    more: bool = False  # there are more matches past this page


def _attr_name(name: str) -> str | None:
    """A query key (keyword or 8-digit tag) as a DICOM keyword; None when it is neither."""
    if _TAG.match(name):
        return keyword_for_tag(int(name, 16)) or f"({name[:4]},{name[4:]})".upper()
    return name if tag_for_keyword(name) is not None else None


def parse_query(
    level: str,
    params: Iterable[tuple[str, str]],
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Query:
    """Check and parse the query parameters of a QIDO-RS request; InvalidQuery says what is wrong."""
    if level not in LEVELS:
        raise ValueError(level)
    depth = LEVELS.index(level)
    filters: dict[str, tuple[Attr, str]] = {}
    include: set[str] = set()
    warnings: list[str] = []
    limit, offset = MAX_LIMIT, 0
    seen: set[str] = set()
    for name, value in params:
        if len(value) > MAX_VALUE or any(ord(c) < 32 for c in value):
            raise InvalidQuery(f"the value of {name} is too long or holds control characters")
        if name in CONTROL_PARAMS:
            if name == "includefield":
                include.update(_include(value))
                continue
            if name in seen:
                raise InvalidQuery(f"{name} is given more than once")
            seen.add(name)
            if name == "limit":
                limit = _whole(name, value, 1, None)
                if limit > MAX_LIMIT:
                    warnings.append(f"limit {limit} is more than this server sends at once: {MAX_LIMIT}")
                    limit = MAX_LIMIT
            elif name == "offset":
                offset = _whole(name, value, 0, MAX_OFFSET)
            elif name == "fuzzymatching" and value.lower() not in ("true", "false", ""):
                raise InvalidQuery("fuzzymatching must be true or false")
            continue
        keyword = _attr_name(name)
        if keyword is None:
            raise InvalidQuery(
                f"{name!r} is not a DICOM attribute keyword or tag, nor one of "
                f"{', '.join(sorted(CONTROL_PARAMS))}"
            )
        if keyword in filters:
            raise InvalidQuery(f"{keyword} is given more than once")
        if keyword == "Modality" and level == STUDY:
            keyword = "ModalitiesInStudy"  # what a client asking studies for a modality means
        attr = BY_KEYWORD.get(keyword)
        if attr is None or attr.match is None or LEVELS.index(attr.level) > depth:
            warnings.append(f"{keyword} is not a matching key at the {level} level here; it was ignored")
            continue
        include.add(keyword)
        if value in ("", "*"):
            continue  # universal matching: the attribute is returned, nothing is filtered
        _check_value(attr, value)
        filters[attr.keyword] = (attr, value)
    return Query(
        level=level,
        study_uid=study_uid,
        series_uid=series_uid,
        filters=tuple(filters.values()),
        include=frozenset(include),
        limit=limit,
        offset=offset,
        warnings=tuple(warnings),
    )


def _whole(name: str, value: str, lo: int, hi: int | None) -> int:
    if not _INT.match(value.strip()):
        raise InvalidQuery(f"{name} must be a whole number, not {value!r}")
    number = int(value)
    if number < lo or (hi is not None and number > hi):
        raise InvalidQuery(f"{name} must be {lo} or more" + (f" and at most {hi}" if hi is not None else ""))
    return number


def _include(value: str) -> set[str]:
    out: set[str] = set()
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if part == "all":
            out.add("all")
            continue
        keyword = _attr_name(part)
        if keyword is None:
            raise InvalidQuery(f"includefield {part!r} is not a DICOM attribute keyword or tag")
        out.add(keyword)
    return out


def _real_date(text: str, keyword: str) -> None:
    if not _DATE.match(text):
        raise InvalidQuery(f"{keyword} must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD, not {text!r}")
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise InvalidQuery(f"{keyword} {text!r} is not a real date") from exc


def _check_value(attr: Attr, value: str) -> None:
    if attr.match == "date":
        lo, dash, hi = value.partition("-")
        if dash and not (lo or hi):
            raise InvalidQuery(f"{attr.keyword} '-' needs a date on at least one side")
        for part in (lo, hi) if dash else (value,):
            if part:
                _real_date(part, attr.keyword)
        if dash and lo and hi and lo > hi:
            raise InvalidQuery(f"{attr.keyword}: the range {value!r} ends before it starts")
    elif attr.match == "int" and not _INT.match(value.strip()):
        raise InvalidQuery(f"{attr.keyword} must be a whole number, not {value!r}")
    elif attr.match == "codes":
        for code in _values(value):
            if not _CODE.match(code.upper()):
                raise InvalidQuery(f"{attr.keyword} must be modality codes such as CT or MR, not {value!r}")
    elif attr.match == "uid":
        uids = _values(value)
        if not uids or any(len(u) > 64 for u in uids):
            raise InvalidQuery(f"{attr.keyword} must be one or more UIDs of at most 64 characters")


def _values(value: str) -> list[str]:
    """A list-of-values match: separated by `\\` or `,`."""
    return [v.strip() for v in re.split(r"[\\,]", value) if v.strip()]


def name_key(text: str | None) -> str | None:
    """A person name or description folded for matching: any case, no accents, `^` and runs of spaces as
    one space. Also used on patterns, whose `*` and `?` pass through unchanged."""
    if text is None:
        return None
    return " ".join(strip_accents(fold(text)).split())


def _glob(pattern: str) -> str:
    """A DICOM wildcard pattern (`*`, `?`) as a SQLite GLOB pattern: GLOB's own `[` made literal."""
    return pattern.replace("[", "[[]")


def person_name_matches(value: str | None, pattern: str, wild: int) -> int:
    """Whether a person name matches a folded pattern as a whole or in any one of its component groups
    (alphabetic, ideographic, phonetic: `Yamada^Tarou=山田^太郎=やまだ^たろう` is found by `山田^太郎`)."""
    if value is None:
        return 0
    names = [value, *(g for g in value.split("=") if g.strip("^ "))] if "=" in value else [value]
    for name in names:
        key = name_key(name) or ""
        if fnmatch.fnmatchcase(key, pattern) if wild else key == pattern:
            return 1
    return 0


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("dw_fold", 1, name_key, deterministic=True)
    conn.create_function("dw_person_name", 3, person_name_matches, deterministic=True)


def _where(attr: Attr, value: str) -> tuple[str, list[Any]]:
    """The SQL condition (on aliases p, st, s, f) and its parameters for one matching key."""
    col = attr.sql
    assert col is not None
    kind = attr.match
    wild = "*" in value or "?" in value
    if kind == "date":
        lo, dash, hi = value.partition("-")
        if not dash:
            return f"{col} = ?", [value]
        conds, params = [], []
        if lo:
            conds.append(f"{col} >= ?")
            params.append(lo)
        if hi:
            conds.append(f"{col} <= ?")
            params.append(hi)
        return " AND ".join(conds), params
    if kind in ("uid", "codes"):
        items = _values(value)
        if kind == "codes":
            items = sorted({v.upper() for v in items})
        marks = ",".join("?" * len(items))
        if attr.keyword == "StudyInstanceUID":  # indexed (studies_uid)
            return f"{col} IN ({marks})", items
        if attr.keyword == "SeriesInstanceUID":
            keys = [series_key(u, None, None, "") for u in items]
            return f"s.SeriesKey IN ({marks}) AND {col} IN ({marks})", [*keys, *items]
        return f"{col} IN ({marks})", items
    if kind == "int":
        return f"{col} = ?", [int(value)]
    if kind == "name":
        folded = name_key(value) or ""
        return f"dw_person_name({col}, ?, ?)", [_glob(folded) if wild else folded, int(wild)]
    if kind == "fold":
        folded = name_key(value) or ""
        return (f"dw_fold({col}) GLOB ?", [_glob(folded)]) if wild else (f"dw_fold({col}) = ?", [folded])
    return (f"{col} GLOB ?", [_glob(value)]) if wild else (f"{col} = ?", [value])


def _conditions(query: Query, tables: str) -> tuple[list[str], list[Any]]:
    """Conditions of the matching keys on the given table aliases (e.g. "s", "stp" for studies and
    patients, "f")."""
    where: list[str] = []
    params: list[Any] = []
    for attr, value in query.filters:
        assert attr.sql is not None
        if attr.sql.split(".", 1)[0] in tables.replace("stp", "st p").split():
            sql, args = _where(attr, value)
            where.append(sql)
            params.extend(args)
    return where, params


def _scope(query: Query) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.study_uid is not None:
        where.append("st.StudyInstanceUID = ?")
        params.append(query.study_uid)
    if query.series_uid is not None:
        where.append("s.SeriesKey = ? AND s.SeriesInstanceUID = ?")
        params += [series_key(query.series_uid, None, None, ""), query.series_uid]
    return where, params


def check_scope(conn: sqlite3.Connection, study_uid: str | None, series_uid: str | None = None) -> None:
    """NotFound unless the index has the study (and the series in it) that a path names."""
    if study_uid is None:
        return
    q = Query(level=SERIES, study_uid=study_uid, series_uid=series_uid)
    where, params = _scope(q)
    row = conn.execute(f"SELECT 1 FROM {_FROM} WHERE {_NAMED} AND {' AND '.join(where)} LIMIT 1", params)
    if row.fetchone() is None:
        what = "series in that study" if series_uid is not None else "study"
        raise NotFound(f"no {what} with that UID in the index")


def search(conn: sqlite3.Connection, query: Query, base_url: str) -> Result:
    """The page of matches for a parsed query, as DICOM JSON objects. `base_url` is the DICOMweb root
    (e.g. `https://pacs.example.co.za/dicom-web`) that RetrieveURL values start with."""
    register_functions(conn)
    check_scope(conn, query.study_uid, query.series_uid)
    if query.level == STUDY:
        rows = _study_rows(conn, query)
    elif query.level == SERIES:
        rows = _series_rows(conn, query)
    else:
        rows = _instance_rows(conn, query)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    shown = _shown(query)
    items = [to_json(row, shown, base_url, query.level) for row in rows]
    warnings = list(query.warnings)
    if more:
        warnings.append(
            f"there are more matches than the {query.limit} sent: ask again with offset="
            f"{query.offset + query.limit}"
        )
    return Result(items, warnings, more)


def _shown(query: Query) -> list[Attr]:
    depth = LEVELS.index(query.level)
    wanted = query.include
    out = []
    for attr in ATTRS:
        own = attr.level == query.level or attr.keyword in EVERY_LEVEL
        if attr.keyword in OWN_LEVEL_ONLY and not own:
            continue
        if LEVELS.index(attr.level) > depth:
            continue
        if "all" in wanted or attr.keyword in wanted:
            out.append(attr)
        elif attr.default and (own or attr.keyword in ("StudyInstanceUID", "SeriesInstanceUID")):
            out.append(attr)
        elif attr.default and query.level == SERIES and attr.level == STUDY:
            out.append(attr)  # a series result names its study and patient too
    return out


def _and(where: list[str]) -> str:
    return "".join(f" AND ({w})" for w in where)


def _study_rows(conn: sqlite3.Connection, query: Query) -> list[dict[str, Any]]:
    own, own_params = _conditions(query, "stp")
    below, below_params = _conditions(query, "s")  # ModalitiesInStudy and series keys: any series matches
    page = f"""SELECT st.id FROM studies st JOIN patients p ON p.id = st.patient_id
               WHERE st.StudyInstanceUID IS NOT NULL{_and(own)}
                 AND st.id IN (SELECT s.study_id FROM series s
                               WHERE s.SeriesInstanceUID IS NOT NULL{_and(below)})
               ORDER BY st.StudyDate DESC, st.id LIMIT ? OFFSET ?"""
    named = "x.study_id = st.id AND x.SeriesInstanceUID IS NOT NULL"
    sql = f"""SELECT st.id AS _id, {_STUDY_COLS},
                (SELECT group_concat(DISTINCT x.Modality) FROM series x WHERE {named}) AS ModalitiesInStudy,
                (SELECT count(*) FROM series x WHERE {named}) AS NumberOfStudyRelatedSeries,
                (SELECT coalesce(sum(x.file_count), 0) FROM series x WHERE {named})
                  AS NumberOfStudyRelatedInstances
              FROM studies st JOIN patients p ON p.id = st.patient_id JOIN ({page}) AS hit ON hit.id = st.id
              ORDER BY st.StudyDate DESC, st.id"""
    params = [*own_params, *below_params, query.limit + 1, query.offset]
    rows = [dict(r) for r in conn.execute(sql, params)]
    for row in rows:
        codes = sorted(c for c in (row["ModalitiesInStudy"] or "").split(",") if c)
        row["ModalitiesInStudy"] = "\\".join(codes) or None
    return rows


def _series_rows(conn: sqlite3.Connection, query: Query) -> list[dict[str, Any]]:
    where, params = _scope(query)
    more, more_params = _conditions(query, "stp s")
    sql = f"""SELECT s.id AS _id, {_SERIES_COLS}, {_STUDY_COLS} FROM {_FROM}
              WHERE {_NAMED}{_and(where + more)}
              ORDER BY s.StudyDate DESC, s.study_id, s.SeriesNumber, s.id LIMIT ? OFFSET ?"""
    return [dict(r) for r in conn.execute(sql, [*params, *more_params, query.limit + 1, query.offset])]


def _instance_rows(conn: sqlite3.Connection, query: Query) -> list[dict[str, Any]]:
    if query.study_uid is None:
        raise InvalidQuery("instances are searched within one study or series")
    where, params = _scope(query)
    more, more_params = _conditions(query, "stp s f")
    sql = f"""SELECT f.id AS _id, f.SOPInstanceUID, f.SOPClassUID, f.InstanceNumber,
                     f.TransferSyntaxUID AS AvailableTransferSyntaxUID, {_SERIES_COLS}, {_STUDY_COLS}
              FROM files f JOIN {_FROM.replace("series s", "series s ON s.id = f.series_id", 1)}
              WHERE {_NAMED} AND f.SOPInstanceUID IS NOT NULL{_and(where + more)}
              ORDER BY s.StudyDate DESC, s.study_id, s.SeriesNumber, s.id,
                       f.InstanceNumber IS NULL, f.InstanceNumber, f.id
              LIMIT ? OFFSET ?"""
    return [dict(r) for r in conn.execute(sql, [*params, *more_params, query.limit + 1, query.offset])]
