"""The SQLite index: connections, the one writer's batched writes, and read queries (the schema and its
migrations are in schema.py).

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple as astuple_extras
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from pacsindex.enrich import Enricher
from pacsindex.errors import IndexNotFound, StoreError
from pacsindex.headers import IMAGE_WITHOUT_HEADER, FileResult, HeaderRecord
from pacsindex.schema import migrate
from pacsindex.textfold import search_text

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
# Search results also carry what the UI shows as badges and filters by.
SEARCH_SELECT = SERIES_SELECT.replace(
    "s.file_count\n", "s.file_count, p.sa_id, p.sa_id_issues, p.medical_aid, st.hospital, st.hospital_group\n"
)
DETAIL_SELECT = """
    SELECT s.id AS series_id, s.SeriesKey, p.PatientName, p.PatientID, p.PatientBirthDate, p.PatientSex,
           p.OtherPatientIDs, p.IssuerOfPatientID, p.InsurancePlanIdentification, p.PatientComments,
           p.sa_id, p.sa_id_issues, p.medical_aid,
           st.StudyInstanceUID, st.StudyDate, st.StudyTime, st.StudyDescription, st.AccessionNumber,
           st.ReferringPhysicianName, st.InstitutionName, st.StudyID, st.InstitutionAddress,
           st.hospital, st.hospital_group,
           s.SeriesInstanceUID, s.SeriesNumber, s.SeriesDescription, s.Modality, s.BodyPartExamined,
           s.SeriesDate, s.Manufacturer, s.StationName, s.file_count, s.total_size
    FROM series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id
"""
FULL_PATH = "d.path || d.sep || f.name"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds")


class KnownFile(NamedTuple):
    id: int
    size: int
    mtime_ns: int
    status: str


def connect(
    path: str | os.PathLike[str], *, create: bool = True, readonly: bool = False
) -> sqlite3.Connection:
    """Open the index. `create=False` raises IndexNotFound when there is none yet."""
    db = Path(path)
    if not db.exists():
        if not create:
            raise IndexNotFound(f"no index at {db}: run `pacsindex index ROOT --db {db}` first")
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the index {db}: {exc.strerror or exc}") from exc
    try:
        conn = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn)
        else:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.close()
                raise IndexNotFound(f"{db} holds no index yet: run `pacsindex index ROOT --db {db}` first")
            conn.execute("PRAGMA query_only = ON")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the index {db}: {exc}") from exc
    return conn


class Writer:
    """The one writer of an indexing run. Batches work into transactions; each commit is all or nothing,
    so a run killed at any moment leaves the index consistent and the finished files in it."""

    def __init__(self, conn: sqlite3.Connection, run_id: int, enricher: Enricher | None = None) -> None:
        self.conn = conn
        self.run_id = run_id
        self.enricher = enricher or Enricher()
        self._in_tx = False
        self._touched: set[int] = set()
        self._pending = 0
        self.seen_dirs: set[int] = set()  # folders listed (or kept) in this run, by id
        self._patients: dict[str, int] = {}
        self._studies: dict[str, int] = {}
        self._series: dict[str, int] = {}

    def _begin(self) -> None:
        if not self._in_tx:
            self.conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    @property
    def pending(self) -> int:
        return self._pending

    def commit(self) -> None:
        if not self._in_tx:
            return
        self._recount()
        self.conn.execute("COMMIT")
        self._in_tx = False
        self._pending = 0

    def rollback(self) -> None:
        if self._in_tx:
            self.conn.execute("ROLLBACK")
            self._in_tx = False
            self._touched.clear()
            self._patients.clear()
            self._studies.clear()
            self._series.clear()

    # -- folders ---------------------------------------------------------------------------------------
    def open_dir(self, path: str, sep: str) -> tuple[int, dict[str, KnownFile]]:
        """Register a listed folder as seen in this run; return its id and the files the index has there."""
        self._begin()
        cur = self.conn.cursor()
        cur.row_factory = None  # plain tuples: this runs once per folder on every re-scan
        row = cur.execute("SELECT id FROM dirs WHERE path = ?", (path,)).fetchone()
        if row is None:
            dir_id = cur.execute("INSERT INTO dirs (path, sep) VALUES (?, ?)", (path, sep)).lastrowid
            assert dir_id is not None
            self.seen_dirs.add(dir_id)
            return dir_id, {}
        dir_id = row[0]
        self.seen_dirs.add(dir_id)
        rows = cur.execute("SELECT name, id, size, mtime_ns, status FROM files WHERE dir_id = ?", (dir_id,))
        return dir_id, {r[0]: KnownFile(r[1], r[2], r[3], r[4]) for r in rows}

    def _subtree_dirs(self, path: str, sep: str) -> list[int]:
        lo, hi = _subtree_range(path, sep)
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM dirs WHERE path = ? OR (path >= ? AND path < ?)", (path, lo, hi)
            )
        ]

    def mark_subtree_seen(self, path: str, sep: str) -> None:
        """A folder we could not list this time: keep what the index has under it rather than drop it."""
        self.seen_dirs.update(self._subtree_dirs(path, sep))

    # -- files -----------------------------------------------------------------------------------------
    def remove_files(self, ids: Iterable[int]) -> int:
        self._begin()
        count = 0
        for file_id in ids:
            row = self.conn.execute(
                "DELETE FROM files WHERE id = ? RETURNING series_id", (file_id,)
            ).fetchone()
            if row is not None:
                count += 1
                if row[0] is not None:
                    self._touched.add(row[0])
        self._pending += count
        return count

    def remove_path(self, dir_path: str, name: str) -> int:
        row = self.conn.execute(
            "SELECT f.id FROM files f JOIN dirs d ON d.id = f.dir_id WHERE d.path = ? AND f.name = ?",
            (dir_path, name),
        ).fetchone()
        return self.remove_files([row[0]]) if row else 0

    def remove_unseen(self, roots: Sequence[tuple[str, str]]) -> int:
        """After a complete run: drop the files of folders under the roots that no longer exist."""
        self._begin()
        removed = 0
        for path, sep in roots:
            gone = [d for d in self._subtree_dirs(path, sep) if d not in self.seen_dirs]
            for dir_id in gone:
                ids = [r[0] for r in self.conn.execute("SELECT id FROM files WHERE dir_id = ?", (dir_id,))]
                removed += self.remove_files(ids)
                self.conn.execute("DELETE FROM dirs WHERE id = ?", (dir_id,))
        return removed

    def put_file(
        self,
        dir_id: int,
        dir_path: str,
        name: str,
        size: int,
        mtime_ns: int,
        result: FileResult,
        replacing: bool = True,
    ) -> None:
        """Insert or replace one file's row with what reading it gave. `replacing=False` promises the
        index has no row for it yet (saves a look-up on a first index)."""
        self._begin()
        if replacing:
            old = self.conn.execute(
                "SELECT series_id FROM files WHERE dir_id = ? AND name = ?", (dir_id, name)
            ).fetchone()
            if old is not None and old[0] is not None:
                self._touched.add(old[0])
        series_id = None
        rec = result.record
        if result.status == "dicom" and rec is not None:
            series_id = self._series_id(rec, dir_path)
            self._touched.add(series_id)
        self.conn.execute(
            """INSERT INTO files (dir_id, name, size, mtime_ns, status, reason, series_id, SOPInstanceUID,
                                  SOPClassUID, InstanceNumber, TransferSyntaxUID, run_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (dir_id, name) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status,
                 reason = excluded.reason, series_id = excluded.series_id,
                 SOPInstanceUID = excluded.SOPInstanceUID, SOPClassUID = excluded.SOPClassUID,
                 InstanceNumber = excluded.InstanceNumber, TransferSyntaxUID = excluded.TransferSyntaxUID,
                 run_id = excluded.run_id""",
            (
                dir_id,
                name,
                size,
                mtime_ns,
                result.status,
                result.reason,
                series_id,
                rec.SOPInstanceUID if rec else None,
                rec.SOPClassUID if rec else None,
                rec.InstanceNumber if rec else None,
                rec.TransferSyntaxUID if rec else None,
                self.run_id,
            ),
        )
        self._pending += 1

    def add_error(self, path: str, reason: str) -> None:
        self._begin()
        self.conn.execute(
            "INSERT INTO errors (run_id, path, reason, at) VALUES (?, ?, ?, ?)",
            (self.run_id, path, reason, iso(utcnow())),
        )

    # -- patients, studies, series -------------------------------------------------------------------
    def _series_id(self, rec: HeaderRecord, dir_path: str) -> int:
        key = rec.series_key(dir_path)
        cached = self._series.get(key)
        if cached is not None:
            return cached
        row = self.conn.execute("SELECT id FROM series WHERE SeriesKey = ?", (key,)).fetchone()
        if row is None:
            study_id = self._study_id(rec, key)
            cur = self.conn.execute(
                """INSERT INTO series (SeriesKey, study_id, SeriesInstanceUID, SeriesNumber,
                                       SeriesDescription,
                                       Modality, BodyPartExamined, SeriesDate, Manufacturer, StationName,
                                       search_text, StudyDate)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                           (SELECT StudyDate FROM studies WHERE id = ?))""",
                (
                    key,
                    study_id,
                    rec.SeriesInstanceUID,
                    rec.SeriesNumber,
                    rec.SeriesDescription,
                    rec.Modality,
                    rec.BodyPartExamined,
                    rec.SeriesDate,
                    rec.Manufacturer,
                    rec.StationName,
                    search_text(
                        rec.PatientName,
                        rec.PatientID,
                        rec.OtherPatientIDs,
                        rec.AccessionNumber,
                        rec.StudyDescription,
                        rec.SeriesDescription,
                        *self.enricher.search_terms(rec),
                    ),
                    study_id,
                ),
            )
            series_id = cur.lastrowid
            assert series_id is not None
        else:
            series_id = row[0]
        if len(self._series) > 50_000:
            self._series.clear()
        self._series[key] = series_id
        return series_id

    def _study_id(self, rec: HeaderRecord, series_key: str) -> int:
        key = rec.StudyInstanceUID or f"series|{series_key}"
        cached = self._studies.get(key)
        if cached is not None:
            return cached
        row = self.conn.execute("SELECT id FROM studies WHERE study_key = ?", (key,)).fetchone()
        if row is None:
            cur = self.conn.execute(
                """INSERT INTO studies (study_key, patient_id, StudyInstanceUID, StudyDate, StudyTime,
                                        StudyDescription, AccessionNumber, ReferringPhysicianName,
                                        InstitutionName, StudyID, InstitutionAddress, hospital,
                                        hospital_group)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    key,
                    self._patient_id(rec),
                    rec.StudyInstanceUID,
                    rec.StudyDate,
                    rec.StudyTime,
                    rec.StudyDescription,
                    rec.AccessionNumber,
                    rec.ReferringPhysicianName,
                    rec.InstitutionName,
                    rec.StudyID,
                    rec.InstitutionAddress,
                    *astuple_extras(self.enricher.study(rec)),
                ),
            )
            study_id = cur.lastrowid
            assert study_id is not None
        else:
            study_id = row[0]
        if len(self._studies) > 50_000:
            self._studies.clear()
        self._studies[key] = study_id
        return study_id

    def _patient_id(self, rec: HeaderRecord) -> int:
        key = f"{rec.PatientID or ''}\x1f{rec.PatientName or ''}"
        cached = self._patients.get(key)
        if cached is not None:
            return cached
        row = self.conn.execute("SELECT id FROM patients WHERE patient_key = ?", (key,)).fetchone()
        if row is None:
            cur = self.conn.execute(
                """INSERT INTO patients (patient_key, PatientName, PatientID, PatientBirthDate, PatientSex,
                                         OtherPatientIDs, IssuerOfPatientID, InsurancePlanIdentification,
                                         PatientComments, sa_id, sa_id_issues, medical_aid)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    key,
                    rec.PatientName,
                    rec.PatientID,
                    rec.PatientBirthDate,
                    rec.PatientSex,
                    rec.OtherPatientIDs,
                    rec.IssuerOfPatientID,
                    rec.InsurancePlanIdentification,
                    rec.PatientComments,
                    *astuple_extras(self.enricher.patient(rec)),
                ),
            )
            patient_id = cur.lastrowid
            assert patient_id is not None
        else:
            patient_id = row[0]
        if len(self._patients) > 50_000:
            self._patients.clear()
        self._patients[key] = patient_id
        return patient_id

    def _recount(self) -> None:
        """Keep every touched series' file_count right, and drop series, studies and patients left empty."""
        if not self._touched:
            return
        ids = list(self._touched)
        self._touched.clear()
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            marks = ",".join("?" * len(chunk))
            self.conn.execute(
                f"""UPDATE series SET
                      file_count = (SELECT count(*) FROM files WHERE series_id = series.id),
                      total_size = (SELECT coalesce(sum(size), 0) FROM files WHERE series_id = series.id)
                    WHERE id IN ({marks})""",
                chunk,
            )
            gone = [
                r[0]
                for r in self.conn.execute(
                    f"DELETE FROM series WHERE id IN ({marks}) AND file_count = 0 RETURNING study_id", chunk
                )
            ]
            if gone:
                self._series.clear()
                self._studies.clear()
                self._patients.clear()
                marks2 = ",".join("?" * len(gone))
                patients = [
                    r[0]
                    for r in self.conn.execute(
                        f"""DELETE FROM studies WHERE id IN ({marks2})
                            AND NOT EXISTS (SELECT 1 FROM series WHERE study_id = studies.id)
                            RETURNING patient_id""",
                        gone,
                    )
                ]
                if patients:
                    marks3 = ",".join("?" * len(patients))
                    self.conn.execute(
                        f"""DELETE FROM patients WHERE id IN ({marks3})
                            AND NOT EXISTS (SELECT 1 FROM studies WHERE patient_id = patients.id)""",
                        patients,
                    )


def _subtree_range(path: str, sep: str) -> tuple[str, str]:
    """Bounds so that `lo <= p < hi` selects exactly the paths strictly below folder `path`."""
    prefix = path if path.endswith(("/", "\\")) else path + (sep or "/")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


# -- runs ----------------------------------------------------------------------------------------------


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


def series_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM series").fetchone()[0])


def row_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {k: row[k] for k in row.keys()}


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
    """Files that are errors (or non-DICOM), and for errors also the folders that could not be listed
    in the latest run."""
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
