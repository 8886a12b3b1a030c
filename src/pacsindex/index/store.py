"""The SQLite index: connections, runs and the read queries. The schema and its migrations are in
schema.py, the indexing run's batched writes in writer.py.

One file, WAL mode: one writer (the indexing run, batching inserts in transactions) and many readers (CLI
searches, the web service) that see each committed batch while a run is still going. The schema is SQL text
in schema.py; `PRAGMA user_version` says which migrations ran.

Files are stored as (folder, name) so a path's folder is kept once; a file's full path is
`dirs.path || dirs.sep || files.name`. Every listed file has a row, whatever it turned out to be
(status 'dicom', 'non_dicom' or 'error' with a reason), so an unchanged re-scan opens nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pacsindex.dicom.headers import IMAGE_WITHOUT_HEADER
from pacsindex.index.clock import iso, utcnow
from pacsindex.index.db import open_db
from pacsindex.index.refold import refold_pending
from pacsindex.index.schema import MIGRATIONS

log = logging.getLogger(__name__)


SERIES_COLUMNS = (
    "SeriesKey",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "file_count",
)
SERIES_SELECT = """
    SELECT s.SeriesKey, p.PatientName, p.PatientID, p.PatientBirthDate, p.PatientSex,
           st.StudyInstanceUID, st.StudyDate, st.StudyDescription, st.AccessionNumber,
           s.SeriesInstanceUID, s.SeriesNumber, s.SeriesDescription, s.Modality, s.file_count
    FROM series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id
"""
# A data-quality flag: the study's StudyInstanceUID also names a study of another patient (a misfiled or
# renamed study). Studies are keyed by (patient, UID), so each patient shows their own series.
STUDY_UID_SHARED = """EXISTS (SELECT 1 FROM studies o WHERE o.StudyInstanceUID = st.StudyInstanceUID
                              AND o.patient_id != st.patient_id) AS study_uid_shared"""
# Search results also carry what the UI shows as badges and filters by; `filling`: a series some of whose
# files a first index has still to read.
SEARCH_SELECT = SERIES_SELECT.replace(
    "s.file_count\n",
    "s.file_count, p.sa_id, p.sa_id_issues, p.medical_aid, st.hospital, st.hospital_group,"
    f" s.filling = 1 AS filling, {STUDY_UID_SHARED}\n",
)
DETAIL_SELECT = f"""
    SELECT s.id AS series_id, s.SeriesKey, p.PatientName, p.PatientID, p.PatientBirthDate, p.PatientSex,
           p.OtherPatientIDs, p.IssuerOfPatientID, p.InsurancePlanIdentification, p.PatientComments,
           p.sa_id, p.sa_id_issues, p.medical_aid,
           st.StudyInstanceUID, st.StudyDate, st.StudyTime, st.StudyDescription, st.AccessionNumber,
           st.ReferringPhysicianName, st.InstitutionName, st.StudyID, st.InstitutionAddress,
           st.hospital, st.hospital_group,
           s.SeriesInstanceUID, s.SeriesNumber, s.SeriesDescription, s.Modality, s.BodyPartExamined,
           s.SeriesDate, s.Manufacturer, s.StationName, s.file_count, s.total_size, s.filling = 1 AS filling,
           {STUDY_UID_SHARED}
    FROM series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id
"""
FULL_PATH = "d.path || d.sep || f.name"


def connect(
    path: str | os.PathLike[str], *, create: bool = True, readonly: bool = False
) -> sqlite3.Connection:
    """Open the index (db.open_db: WAL, migrations, sqlite3 errors as StoreError). `create=False` raises
    IndexNotFound when there is none yet."""
    hint = f": run `pacsindex index ROOT --db {Path(path)}` first"
    conn = open_db(path, MIGRATIONS, "index", create=create, readonly=readonly, missing_hint=hint)
    if not readonly:
        refold_pending(conn)  # an index from before the search text changed is brought up to date
    return conn


RUN_COUNTERS = (
    "enumerated_files",
    "files_processed",
    "files_read",
    "files_unchanged",
    "files_removed",
    "errors",
    "non_dicom",
)


def begin_run(conn: sqlite3.Connection, roots: Sequence[str], started_at: datetime) -> int:
    conn.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
    cur = conn.execute(
        "INSERT INTO runs (started_at, status, roots) VALUES (?, 'running', ?)",
        (iso(started_at), json.dumps(list(roots), ensure_ascii=False)),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def finish_run(
    conn: sqlite3.Connection, run_id: int, status: str, counters: dict[str, int], message: str | None
) -> None:
    sets = ", ".join(f"{c} = ?" for c in RUN_COUNTERS)
    conn.execute(
        f"UPDATE runs SET status = ?, finished_at = ?, message = ?, {sets} WHERE id = ?",
        (status, iso(utcnow()), message, *(counters.get(c, 0) for c in RUN_COUNTERS), run_id),
    )


# -- reads ---------------------------------------------------------------------------------------------


def has_index(conn: sqlite3.Connection) -> bool:
    """Whether any indexing run has begun on this index (a fresh database holds only staff accounts)."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM runs)").fetchone()[0] == 1)


def series_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM series").fetchone()[0])


def filling_count(conn: sqlite3.Connection) -> int:
    """Series still being indexed: found by the survey, some of their files not read yet."""
    return int(conn.execute("SELECT count(*) FROM series WHERE filling = 1").fetchone()[0])


_BOOLEAN_COLUMNS = frozenset({"filling"})  # stored as 0/1, shown as false/true


def row_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {k: bool(row[k]) if k in _BOOLEAN_COLUMNS else row[k] for k in row.keys()}


def list_series(conn: sqlite3.Connection, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    sql = SERIES_SELECT + " ORDER BY s.StudyDate DESC, s.study_id, s.SeriesNumber, s.id LIMIT ? OFFSET ?"
    return [row_dict(r) for r in conn.execute(sql, (limit if limit is not None else -1, offset))]


def get_series(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(DETAIL_SELECT + " WHERE s.SeriesKey = ?", (key,)).fetchone()
    return row_dict(row) if row else None


def series_files(conn: sqlite3.Connection, series_id: int) -> Iterator[dict[str, Any]]:
    sql = f"""SELECT {FULL_PATH} AS path, f.size, f.mtime_ns, f.SOPInstanceUID, f.SOPClassUID,
                     f.InstanceNumber, f.TransferSyntaxUID
              FROM files f JOIN dirs d ON d.id = f.dir_id
              WHERE f.series_id = ? ORDER BY f.InstanceNumber IS NULL, f.InstanceNumber, path"""
    for r in conn.execute(sql, (series_id,)):
        yield row_dict(r)


def problems(
    conn: sqlite3.Connection, kind: str = "error", limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Files that are errors (or non-DICOM, or read with a note about what was odd: kind "note"), and for
    errors also the folders that could not be listed in the latest run."""
    if kind == "note":
        sql = f"""SELECT {FULL_PATH} AS path, f.note AS reason FROM files f JOIN dirs d ON d.id = f.dir_id
                  WHERE f.note IS NOT NULL ORDER BY path LIMIT ? OFFSET ?"""
        return [row_dict(r) for r in conn.execute(sql, (limit, offset))]
    if kind == "non_dicom":
        sql = f"""SELECT {FULL_PATH} AS path, f.reason FROM files f JOIN dirs d ON d.id = f.dir_id
                  WHERE f.status = 'non_dicom' ORDER BY path LIMIT ? OFFSET ?"""
        return [row_dict(r) for r in conn.execute(sql, (limit, offset))]
    sql = f"""SELECT path, reason FROM (
                SELECT {FULL_PATH} AS path, f.reason AS reason FROM files f JOIN dirs d ON d.id = f.dir_id
                WHERE f.status = 'error'
                UNION ALL
                SELECT path, reason FROM errors WHERE run_id = (SELECT max(id) FROM runs))
              ORDER BY path LIMIT ? OFFSET ?"""
    return [row_dict(r) for r in conn.execute(sql, (limit, offset))]


def images_without_header(conn: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """Folders holding images that have no DICOM header (raw JPEG 2000, JP2), with how many each."""
    sql = """SELECT d.path AS folder, count(*) AS images, min(f.reason) AS kind
             FROM files f JOIN dirs d ON d.id = f.dir_id
             WHERE f.status = 'non_dicom' AND f.reason LIKE ?
             GROUP BY d.id ORDER BY d.path LIMIT ?"""
    return [row_dict(r) for r in conn.execute(sql, (IMAGE_WITHOUT_HEADER + "%", limit))]


def facets(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """The medical aids (with how many patients), hospitals and hospital groups (with how many studies) found
    in the index, most frequent first: the choices a search filter offers."""
    aids = conn.execute(
        "SELECT medical_aid AS name, count(*) AS count FROM patients WHERE medical_aid IS NOT NULL "
        "GROUP BY medical_aid ORDER BY count DESC, name"
    )
    hospitals = conn.execute(
        "SELECT hospital AS name, hospital_group AS 'group', count(*) AS count FROM studies "
        "WHERE hospital IS NOT NULL GROUP BY hospital, hospital_group ORDER BY count DESC, name"
    )
    groups = conn.execute(
        "SELECT hospital_group AS name, count(*) AS count FROM studies WHERE hospital_group IS NOT NULL "
        "GROUP BY hospital_group ORDER BY count DESC, name"
    )
    return {
        "medical_aids": [row_dict(r) for r in aids],
        "hospitals": [row_dict(r) for r in hospitals],
        "hospital_groups": [row_dict(r) for r in groups],
    }


@contextmanager
def reading(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """A read-only connection for searches; IndexNotFound when no index exists yet."""
    conn = connect(path, create=False, readonly=True)
    try:
        yield conn
    finally:
        conn.close()
