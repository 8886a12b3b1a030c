"""The one writer of an indexing run: folders, files, errors and the patient → study → series rows they
belong to, written in batched transactions.

Each commit is all or nothing and holds whole files, their folder's "seen" mark and the recounted
`file_count` of every series it touched, so a run killed at any moment (even kill -9) leaves the index
consistent, with every finished file in it and nothing counted twice. Readers (store.reading) see each
committed batch while the run goes on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import astuple as astuple_extras
from typing import NamedTuple

from pacsindex.dicom.headers import FileResult, HeaderRecord
from pacsindex.index.sa.enrich import Enricher
from pacsindex.index.store import iso, utcnow
from pacsindex.index.textfold import search_text


class KnownFile(NamedTuple):
    id: int
    size: int
    mtime_ns: int
    status: str




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

    def keep_dir(self, path: str) -> tuple[int, int, int]:
        """A folder a quick pass did not list: what the index has there stands (seen in this run).
        Returns how many files it holds, and how many of them are non-DICOM and errors."""
        row = self.conn.execute("SELECT id FROM dirs WHERE path = ?", (path,)).fetchone()
        if row is None:
            return 0, 0, 0
        self.seen_dirs.add(row[0])
        files, non_dicom, errors = self.conn.execute(
            "SELECT count(*), total(status = 'non_dicom'), total(status = 'error')"
            " FROM files WHERE dir_id = ?",
            (row[0],),
        ).fetchone()
        return int(files), int(non_dicom), int(errors)

    def set_filling(self, dir_id: int, filling: bool) -> None:
        """Mark the series of a folder's indexed files as still being filled (a survey read one file of the
        folder; the others come later in the run), or as filled."""
        self._begin()
        self.conn.execute(
            "UPDATE series SET filling = ? WHERE filling != ? AND id IN"
            " (SELECT series_id FROM files WHERE dir_id = ? AND series_id IS NOT NULL)",
            (int(filling), int(filling), dir_id),
        )

    def clear_filling(self) -> None:
        """A run read every file it found: no series is being filled any more."""
        self._begin()
        self.conn.execute("UPDATE series SET filling = 0 WHERE filling != 0")

    def set_dir_state(self, dir_id: int, mtime_ns: int, has_subdirs: bool) -> None:
        """Every file of the folder's listing is indexed: remember its time, for the next quick pass."""
        self._begin()
        self.conn.execute(
            "UPDATE dirs SET mtime_ns = ?, has_subdirs = ? WHERE id = ?", (mtime_ns, int(has_subdirs), dir_id)
        )

    def _subtree_dirs(self, path: str, sep: str) -> list[int]:
        lo, hi = subtree_range(path, sep)
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


def subtree_range(path: str, sep: str) -> tuple[str, str]:
    """Bounds so that `lo <= p < hi` selects exactly the paths strictly below folder `path`."""
    prefix = path if path.endswith(("/", "\\")) else path + (sep or "/")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
