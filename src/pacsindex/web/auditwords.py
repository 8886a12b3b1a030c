"""What the audit page needs to write an entry as a sentence ("thandi shared CT CHEST of MÜLLER, Hans,
valid until ..."): for each entry, the series or study it names as the index has it now, and a share link's
expiry. Looked up when the page asks, from the stored row; nothing here is written to a log file."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import Request

from pacsindex.errors import PacsIndexError
from pacsindex.index.store import connect
from pacsindex.share.store import iso
from pacsindex.web.security import state

__all__ = ["with_subjects"]

_SERIES = """
    SELECT s.Modality, s.SeriesDescription, st.StudyDescription, st.StudyDate, p.PatientName
    FROM series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id
    WHERE s.SeriesKey = ?
"""
_STUDY = """
    SELECT st.StudyDescription, st.StudyDate, p.PatientName,
           (SELECT group_concat(DISTINCT x.Modality) FROM series x WHERE x.study_id = st.id) AS Modality
    FROM studies st JOIN patients p ON p.id = st.patient_id WHERE st.id = ?
"""


def with_subjects(request: Request, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries, each with `about`: {"series"|"study": fields from the index, "share": its expiry}."""
    sharing = getattr(request.app.state, "sharing", None)
    try:
        conn = connect(state(request).settings.db, create=False, readonly=True)
    except PacsIndexError:
        conn = None
    try:
        for entry in entries:
            about: dict[str, Any] = {}
            detail = entry["detail"]
            if conn is not None:
                for key, sql, name in (("SeriesKey", _SERIES, "series"), ("StudyKey", _STUDY, "study")):
                    value = detail.get(key)
                    if isinstance(value, str):
                        row = _one(conn, sql, value)
                        if row is not None:
                            about[name] = row
            share_id = detail.get("share_id")
            if sharing is not None and isinstance(share_id, int):
                try:
                    about["share"] = {"expires_at": iso(sharing.shares.get(share_id).expires_at)}
                except PacsIndexError:
                    pass
            entry["about"] = about
    finally:
        if conn is not None:
            conn.close()
    return entries


def _one(conn: sqlite3.Connection, sql: str, value: str) -> dict[str, Any] | None:
    try:
        row = conn.execute(sql, (value,)).fetchone()
    except sqlite3.Error:
        return None
    return dict(row) if row is not None else None
