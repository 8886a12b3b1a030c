"""The one writer of an indexing run: folders, files, errors and the patient → study → series rows they
belong to, written in batched transactions.

Each commit is all or nothing and holds whole files, their folder's "seen" mark and the recounted
`file_count` of every series it touched, so a run killed at any moment (even kill -9) leaves the index
consistent, with every finished file in it and nothing counted twice. Readers (store.reading) see each
committed batch while the run goes on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pacsindex.dicom.headers import FileResult, HeaderRecord
from pacsindex.index.clock import iso, utcnow
from pacsindex.index.sa.enrich import Enricher
from pacsindex.index.textfold import series_search_text

__all__ = ["KnownFile", "Writer", "patient_key", "subtree_range"]


class KnownFile(NamedTuple):
    id: int
    size: int
    mtime_ns: int
    status: str
    transient: int = 0  # an error that may pass: read again
    record_sig: str | None = None  # the catalog that described it, and a hash of its record


def patient_key(rec: HeaderRecord, series_key: str) -> str:
    """Who a file belongs to: PatientID and PatientName. A file with neither is nobody we know: its study
    (else its series) stands for its patient, so unnamed files are never merged into one patient."""
    if rec.PatientID or rec.PatientName:
        return f"{rec.PatientID or ''}\x1f{rec.PatientName or ''}"
    return f"\x1f\x1fanonymous|{rec.StudyInstanceUID or 'series|' + series_key}"


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
        self._left: set[int] = set()  # studies a series moved out of: dropped at commit when empty

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
            if self.conn.in_transaction:  # SQLite has already rolled back after some errors (disk full)
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
        rows = cur.execute(
            "SELECT name, id, size, mtime_ns, status, transient, record_sig FROM files WHERE dir_id = ?",
            (dir_id,),
        )
        return dir_id, {r[0]: KnownFile(*r[1:]) for r in rows}

    def keep_dir(self, path: str) -> tuple[int, int, int, int]:
        """A folder a quick pass did not list, with every folder below it: what the index has there stands
        (seen in this run). Returns how many folders that is, how many files they hold, and how many of the
        files are non-DICOM and errors."""
        row = self.conn.execute("SELECT sep FROM dirs WHERE path = ?", (path,)).fetchone()
        if row is None:
            return 0, 0, 0, 0
        ids = self._subtree_dirs(path, row[0])
        self.seen_dirs.update(ids)
        lo, hi = subtree_range(path, row[0])
        files, non_dicom, errors = self.conn.execute(
            "SELECT count(f.id), total(f.status = 'non_dicom'), total(f.status = 'error')"
            " FROM dirs d JOIN files f ON f.dir_id = d.id WHERE d.path = ? OR (d.path >= ? AND d.path < ?)",
            (path, lo, hi),
        ).fetchone()
        return len(ids), int(files), int(non_dicom), int(errors)

    def set_filling(self, dir_id: int, filling: bool) -> None:
        """Mark the series of a folder's indexed files as still being filled (the survey read one file of
        the folder; the others come later in the run), or as filled."""
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

    def _any_spelling(self, path: str, sep: str) -> list[int]:
        """Folders under an smb:// root in any letter case: SMB names are case-insensitive, and an index
        from before roots had one spelling may hold the same folder under several."""
        lo, hi = subtree_range(path.lower(), sep)
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM dirs WHERE lower(path) = ? OR (lower(path) >= ? AND lower(path) < ?)",
                (path.lower(), lo, hi),
            )
        ]

    def remove_unseen(self, roots: Sequence[tuple[str, str]]) -> int:
        """After a complete run: drop the files of folders under the roots that no longer exist (for an
        smb:// root, also those stored under another spelling of it)."""
        self._begin()
        removed = 0
        for path, sep in roots:
            below = self._any_spelling if path[:6].lower() == "smb://" else self._subtree_dirs
            gone = [d for d in below(path, sep) if d not in self.seen_dirs]
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
        record_sig: str | None = None,
    ) -> None:
        """Insert or replace one file's row with what reading it gave. `replacing=False` says the index
        had no row for it when its folder was listed (saves a look-up on a first index); a row written
        since (by another source of the same run) is still replaced properly. `record_sig` marks a row
        written from a catalog's record."""
        self._begin()
        series_id = None
        rec = result.record
        if result.status == "dicom" and rec is not None:
            series_id = self._series_id(rec, dir_path)
            self._touched.add(series_id)
        values = (
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
            result.note,
            int(result.transient),
            record_sig,
        )
        insert = """INSERT INTO files (dir_id, name, size, mtime_ns, status, reason, series_id,
                                  SOPInstanceUID, SOPClassUID, InstanceNumber, TransferSyntaxUID,
                                  run_id, note, transient, record_sig)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
        if not replacing:
            if self.conn.execute(insert + " ON CONFLICT (dir_id, name) DO NOTHING", values).rowcount:
                self._pending += 1
                return
        old = self.conn.execute(
            "SELECT series_id FROM files WHERE dir_id = ? AND name = ?", (dir_id, name)
        ).fetchone()
        if old is not None and old[0] is not None:
            self._touched.add(old[0])
        self.conn.execute(
            insert
            + """ ON CONFLICT (dir_id, name) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status,
                 reason = excluded.reason, series_id = excluded.series_id,
                 SOPInstanceUID = excluded.SOPInstanceUID, SOPClassUID = excluded.SOPClassUID,
                 InstanceNumber = excluded.InstanceNumber, TransferSyntaxUID = excluded.TransferSyntaxUID,
                 run_id = excluded.run_id, note = excluded.note, transient = excluded.transient,
                 record_sig = excluded.record_sig""",
            values,
        )
        self._pending += 1

    def remove_described(self, label: str, keep: set[tuple[int, str]]) -> int:
        """After a complete read of a catalog: drop the rows it described before and no longer lists
        (`keep`: the (folder id, name) of every file it listed this time)."""
        self._begin()
        rows = self.conn.execute(
            "SELECT id, dir_id, name FROM files WHERE record_sig >= ? AND record_sig < ?",
            (label + "\x1f", label + "\x20"),
        ).fetchall()
        return self.remove_files([r[0] for r in rows if (r[1], r[2]) not in keep])

    def add_error(self, path: str, reason: str) -> None:
        self._begin()
        self.conn.execute(
            "INSERT INTO errors (run_id, path, reason, at) VALUES (?, ?, ?, ?)",
            (self.run_id, path, reason, iso(utcnow())),
        )

    # -- patients, studies, series -------------------------------------------------------------------
    # The first file of a series written in a run also refreshes what the index holds about its series,
    # study and patient (a corrected catalog row, a re-exported study), and moves the series to the study
    # and patient its files now name; the rest of the run finds them in the caches.
    def _series_id(self, rec: HeaderRecord, dir_path: str) -> int:
        key = rec.series_key(dir_path)
        cached = self._series.get(key)
        if cached is not None:
            return cached
        study_id = self._study_id(rec, key)
        fields = {
            "study_id": study_id,
            "SeriesInstanceUID": rec.SeriesInstanceUID,
            "SeriesNumber": rec.SeriesNumber,
            "SeriesDescription": rec.SeriesDescription,
            "Modality": rec.Modality,
            "BodyPartExamined": rec.BodyPartExamined,
            "SeriesDate": rec.SeriesDate,
            "Manufacturer": rec.Manufacturer,
            "StationName": rec.StationName,
            "search_text": series_search_text(
                rec.PatientName,
                rec.PatientID,
                rec.OtherPatientIDs,
                rec.AccessionNumber,
                rec.StudyDescription,
                rec.SeriesDescription,
                rec.ReferringPhysicianName,
            ),
        }
        row = self.conn.execute("SELECT id, study_id FROM series WHERE SeriesKey = ?", (key,)).fetchone()
        if row is None:
            cur = self.conn.execute(
                f"""INSERT INTO series (SeriesKey, {", ".join(fields)}, StudyDate)
                   VALUES (?, {", ".join("?" * len(fields))},
                           (SELECT StudyDate FROM studies WHERE id = ?))""",
                (key, *fields.values(), study_id),
            )
            series_id = cur.lastrowid
            assert series_id is not None
        else:
            series_id = row[0]
            if row[1] != study_id:
                self._left.add(row[1])
            if self._refresh("series", series_id, fields) and row[1] != study_id:
                self.conn.execute(
                    "UPDATE series SET StudyDate = (SELECT StudyDate FROM studies WHERE id = ?) WHERE id = ?",
                    (study_id, series_id),
                )
        if len(self._series) > 50_000:
            self._series.clear()
        self._series[key] = series_id
        return series_id

    def _refresh(self, table: str, row_id: int, fields: Mapping[str, object]) -> bool:
        """Set a row's columns to `fields` where they differ (an unchanged row is not written, so the
        full-text triggers do not fire); returns whether it changed."""
        sets = ", ".join(f"{c} = ?" for c in fields)
        differs = " OR ".join(f"{c} IS NOT ?" for c in fields)
        values = list(fields.values())
        cur = self.conn.execute(
            f"UPDATE {table} SET {sets} WHERE id = ? AND ({differs})", (*values, row_id, *values)
        )
        return cur.rowcount > 0

    def _study_id(self, rec: HeaderRecord, series_key: str) -> int:
        owner = patient_key(rec, series_key)
        # Keyed by patient too: a StudyInstanceUID two patients share gives each their own study.
        key = owner + "\x1e" + (rec.StudyInstanceUID or f"series|{series_key}")
        cached = self._studies.get(key)
        if cached is not None:
            return cached
        extras = self.enricher.study(rec)
        fields = {
            "patient_id": self._patient_id(rec, owner),
            "StudyInstanceUID": rec.StudyInstanceUID,
            "StudyDate": rec.StudyDate,
            "StudyTime": rec.StudyTime,
            "StudyDescription": rec.StudyDescription,
            "AccessionNumber": rec.AccessionNumber,
            "ReferringPhysicianName": rec.ReferringPhysicianName,
            "InstitutionName": rec.InstitutionName,
            "StudyID": rec.StudyID,
            "InstitutionAddress": rec.InstitutionAddress,
            "hospital": extras.hospital,
            "hospital_group": extras.hospital_group,
        }
        row = self.conn.execute("SELECT id, StudyDate FROM studies WHERE study_key = ?", (key,)).fetchone()
        if row is None:
            study_id = self._insert("studies", "study_key", key, fields)
        else:
            study_id = row[0]
            if self._refresh("studies", study_id, fields) and row[1] != rec.StudyDate:
                self.conn.execute(
                    "UPDATE series SET StudyDate = ? WHERE study_id = ?", (rec.StudyDate, study_id)
                )
        if len(self._studies) > 50_000:
            self._studies.clear()
        self._studies[key] = study_id
        return study_id

    def _insert(self, table: str, key_column: str, key: str, fields: dict[str, Any]) -> int:
        """A new patient or study row keyed by `key`, and its id (table and column names are ours)."""
        cur = self.conn.execute(
            f"""INSERT INTO {table} ({key_column}, {", ".join(fields)})
               VALUES (?, {", ".join("?" * len(fields))})""",
            (key, *fields.values()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _patient_id(self, rec: HeaderRecord, key: str) -> int:
        cached = self._patients.get(key)
        if cached is not None:
            return cached
        extras = self.enricher.patient(rec)
        fields = {
            "PatientName": rec.PatientName,
            "PatientID": rec.PatientID,
            "PatientBirthDate": rec.PatientBirthDate,
            "PatientSex": rec.PatientSex,
            "OtherPatientIDs": rec.OtherPatientIDs,
            "IssuerOfPatientID": rec.IssuerOfPatientID,
            "InsurancePlanIdentification": rec.InsurancePlanIdentification,
            "PatientComments": rec.PatientComments,
            "sa_id": extras.sa_id,
            "sa_id_issues": extras.sa_id_issues,
            "medical_aid": extras.medical_aid,
        }
        row = self.conn.execute("SELECT id FROM patients WHERE patient_key = ?", (key,)).fetchone()
        if row is None:
            patient_id = self._insert("patients", "patient_key", key, fields)
        else:
            patient_id = row[0]
            self._refresh("patients", patient_id, fields)
        if len(self._patients) > 50_000:
            self._patients.clear()
        self._patients[key] = patient_id
        return patient_id

    def _recount(self) -> None:
        """Keep every touched series' file_count right, and drop series, studies and patients left empty."""
        if self._left:
            self._drop_empty_studies(list(self._left))
            self._left.clear()
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
                self._drop_empty_studies(gone)

    def _drop_empty_studies(self, study_ids: list[int]) -> None:
        """Drop those of these studies that hold no series, and their patients when left with no study."""
        self._studies.clear()
        self._patients.clear()
        marks = ",".join("?" * len(study_ids))
        patients = [
            r[0]
            for r in self.conn.execute(
                f"""DELETE FROM studies WHERE id IN ({marks})
                    AND NOT EXISTS (SELECT 1 FROM series WHERE study_id = studies.id)
                    RETURNING patient_id""",
                study_ids,
            )
        ]
        if patients:
            marks = ",".join("?" * len(patients))
            self.conn.execute(
                f"""DELETE FROM patients WHERE id IN ({marks})
                    AND NOT EXISTS (SELECT 1 FROM studies WHERE patient_id = patients.id)""",
                patients,
            )


def subtree_range(path: str, sep: str) -> tuple[str, str]:
    """Bounds so that `lo <= p < hi` selects exactly the paths strictly below folder `path`."""
    prefix = path if path.endswith(("/", "\\")) else path + (sep or "/")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
