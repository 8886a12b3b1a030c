"""Access reports (POPIA s23: a patient may ask who has had access to their records) and the audit export.

A patient is found by name or ID (`find_patients`, the staff search's matching); their report
(`access_report`) lists, from the audit log, every access to their records, oldest first:
- a staff search that listed them (searches record the SeriesKeys they returned, never names),
- a series of theirs opened, shared (with the "for" note when the link has one), sent to Orthanc, or
  searched and retrieved over DICOMweb,
- every use of a link to one of their series by its recipient (page, download, single file),
each with the time in the practice's zone, who (staff name, API token, or "link recipient") and the
client address. `report_csv` and `pacsindex.ops.pdf.report_pdf` render it. `audit_csv` exports the whole
audit log for a date range. Making either is itself audited by the caller.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pacsindex.accounts import audit
from pacsindex.errors import InvalidQuery, NotFound, StoreError
from pacsindex.index import store
from pacsindex.index.search import search

__all__ = [
    "AccessReport",
    "access_report",
    "audit_csv",
    "date_range",
    "find_patients",
    "report_csv",
]

MAX_PATIENTS = 50


@dataclass(frozen=True)
class Access:
    at: str  # practice time
    who: str
    client: str
    what: str
    series: str  # study date, modality, description of the series concerned
    detail: str


@dataclass(frozen=True)
class AccessReport:
    PatientID: str
    PatientNames: tuple[str, ...]
    made_at: str
    timezone: str
    accesses: tuple[Access, ...]


def find_patients(db: Any, query: str) -> list[dict[str, Any]]:
    """Patients whose name or ID holds every word of `query`, with how many series each has."""
    if not query.strip():
        raise InvalidQuery("type a patient's name or ID")
    with store.reading(db) as conn:
        rows = search(conn, query, limit=1000)
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            key = (r["PatientID"] or "", r["PatientName"] or "")
            found = seen.setdefault(
                key,
                {
                    "PatientID": key[0],
                    "PatientName": key[1],
                    "PatientBirthDate": r["PatientBirthDate"],
                    "series": 0,
                },
            )
            found["series"] += 1
    return list(seen.values())[:MAX_PATIENTS]


def _patient_series(conn: sqlite3.Connection, patient_id: str, name: str | None) -> list[sqlite3.Row]:
    sql = """SELECT p.PatientName, s.SeriesKey, s.SeriesInstanceUID, st.StudyInstanceUID, st.StudyDate,
                    s.Modality, s.SeriesDescription
             FROM series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id
             WHERE p.PatientID IS ?"""
    params: list[Any] = [patient_id or None]
    if not patient_id:  # no ID on the files: the name is all there is
        sql += " AND p.PatientName IS ?"
        params.append(name)
    return conn.execute(sql, params).fetchall()


def access_report(
    db: Any, patient_id: str, *, tz: ZoneInfo, now: datetime, name: str | None = None
) -> AccessReport:
    """Every access to the records of the patient with this PatientID (or, without one, this name)."""
    try:
        with store.reading(db) as conn:
            rows = _patient_series(conn, patient_id, name)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the index: {exc}") from exc
    if not rows:
        raise NotFound("no patient with that ID in the index")
    series = {r["SeriesKey"]: r for r in rows}
    by_uid = {}
    for r in rows:
        for uid in (r["SeriesInstanceUID"], r["StudyInstanceUID"]):
            if uid:
                by_uid[uid] = r
    needles = [json.dumps(v) for v in [*series, *by_uid]]
    entries = audit.mentioning(db, needles)
    shares: dict[int, sqlite3.Row] = {}
    for e in entries:
        if e["action"] == audit.SHARE_CREATE and e["detail"].get("SeriesKey") in series:
            shares[int(e["detail"]["share_id"])] = series[e["detail"]["SeriesKey"]]
    share_needles = [f'"share_id": {i}{end}' for i in shares for end in (",", "}")]
    entries += [
        e
        for e in audit.mentioning(db, share_needles)
        if e["action"] == audit.SHARE_ACCESS and e["detail"].get("share_id") in shares
    ]
    entries.sort(key=lambda e: (e["at"], e["id"]))
    accesses = []
    for e in entries:
        access = _describe(e, series, by_uid, shares, tz)
        if access is not None:
            accesses.append(access)
    names = tuple(sorted({r["PatientName"] or "" for r in rows}))
    return AccessReport(
        PatientID=patient_id,
        PatientNames=names,
        made_at=now.astimezone(tz).isoformat(timespec="seconds"),
        timezone=str(tz),
        accesses=tuple(accesses),
    )


def _series_text(row: sqlite3.Row | None) -> str:
    if row is None:
        return ""
    parts = [_date(row["StudyDate"]), row["Modality"], row["SeriesDescription"]]
    return " ".join(p for p in parts if p)


def _date(value: str | None) -> str:
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def _describe(
    e: dict[str, Any],
    series: dict[str, sqlite3.Row],
    by_uid: dict[str, sqlite3.Row],
    shares: dict[int, sqlite3.Row],
    tz: ZoneInfo,
) -> Access | None:
    d, action = e["detail"], e["action"]
    who = e["user"] or "link recipient"
    row: sqlite3.Row | None = series.get(d.get("SeriesKey", ""))
    repeats = f" ({e['repeats']} times)" if e.get("repeats", 1) > 1 else ""
    if action == audit.SEARCH:
        hits = [k for k in d.get("series", []) if k in series]
        if not hits:
            return None
        what, detail = "search listed their records", f"{len(hits)} of their series in the results"
        row = series[hits[0]]
    elif action == audit.OPEN_SERIES and row is not None:
        what, detail = "opened a series", ""
    elif action == audit.SHARE_CREATE and row is not None:
        note = d.get("note") or d.get("for") or d.get("recipient")
        what = "shared a series by link"
        detail = f"link {d.get('share_id')}" + (f", for: {note}" if note else "")
        detail += f", expires {d['expires_at']}" if d.get("expires_at") else ""
    elif action == audit.SHARE_ACCESS and d.get("share_id") in shares:
        row = shares[d["share_id"]]
        kind = {
            "download": "pressed Download",
            "zip": "downloaded the series",
            "file": "downloaded a file",
            "page": "opened the link",
            "view": "viewed the images",
        }
        what = kind.get(str(d.get("kind")), f"used the link ({d.get('kind')})")
        detail = f"link {d['share_id']}, {d.get('outcome')}{repeats}"
        if d.get("bytes_sent"):
            detail += f", {d['bytes_sent']} bytes"
    elif action == audit.ORTHANC_SEND and row is not None:
        if d.get("state") in ("started", "resumed", "stopped"):
            return None  # the end of the send is the access; its start is in the same report line
        what, detail = "sent a series to Orthanc", f"{d.get('state')}, {d.get('sent', 0)} files sent"
    elif action in (audit.DICOMWEB_QUERY, audit.DICOMWEB_RETRIEVE):
        uid = next((u for u in _strings(d) if u in by_uid), None)
        if uid is None:
            return None
        row = by_uid[uid]
        what = "DICOMweb search" if action == audit.DICOMWEB_QUERY else "DICOMweb retrieval"
        detail = ""
    else:
        return None
    at = datetime.fromisoformat(e["at"]).astimezone(tz).isoformat(timespec="seconds")
    return Access(at, who, e["client"] or "", what, _series_text(row), detail)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


REPORT_COLUMNS = ("time", "who", "address", "what", "series", "detail")


def report_csv(report: AccessReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Access report for patient", _cell(report.PatientID), _cell(" / ".join(report.PatientNames))])
    w.writerow(["Made", report.made_at, report.timezone])
    w.writerow([])
    w.writerow(REPORT_COLUMNS)
    for a in report.accesses:
        w.writerow([_cell(v) for v in (a.at, a.who, a.client, a.what, a.series, a.detail)])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def date_range(date_from: str, date_to: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[the start of `date_from`, the end of `date_to`) in practice time; InvalidQuery for bad dates."""
    try:
        first, last = date.fromisoformat(date_from), date.fromisoformat(date_to)
    except ValueError:
        raise InvalidQuery("dates must look like 2026-01-31") from None
    if last < first:
        raise InvalidQuery("the end date is before the start date")
    return (
        datetime.combine(first, time(), tz),
        datetime.combine(last + timedelta(days=1), time(), tz),
    )


AUDIT_COLUMNS = ("id", "at_utc", "at_local", "user", "client", "action", "repeats", "detail")


def audit_csv(db: Any, since: datetime, until: datetime, tz: ZoneInfo) -> Iterable[str]:
    """The audit log between `since` and `until` as CSV, a line at a time (a year may be large)."""
    buf = io.StringIO()
    w = csv.writer(buf)

    def line(values: Iterable[Any]) -> str:
        buf.seek(0)
        buf.truncate()
        w.writerow(list(values))
        return buf.getvalue()

    yield line(AUDIT_COLUMNS)
    for e in audit.between(db, since, until):
        local = datetime.fromisoformat(e["at"]).astimezone(tz).isoformat(timespec="seconds")
        detail = json.dumps(e["detail"], ensure_ascii=False, sort_keys=True)
        yield line(
            [
                e["id"],
                e["at"],
                local,
                _cell(e["user"] or ""),
                e["client"] or "",
                e["action"],
                e["repeats"],
                detail,
            ]
        )
