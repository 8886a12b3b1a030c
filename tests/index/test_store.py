"""The index database: schema migrations, WAL, read-only readers, and grouping into patients/studies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import write_dicom
from pacsindex.errors import IndexNotFound, StoreError
from pacsindex.index import schema, store
from pacsindex.index.writer import subtree_range
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree


def test_new_index_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "i.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"patients", "studies", "series", "files", "dirs", "errors", "runs"} <= tables
    conn.close()
    again = store.connect(tmp_path / "i.db")  # re-opening runs no migration twice
    assert again.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)


def test_readers_never_create_or_write(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="pacsindex index"):
        store.connect(tmp_path / "none.db", create=False, readonly=True)
    assert not (tmp_path / "none.db").exists()
    store.connect(tmp_path / "i.db").close()
    with store.reading(tmp_path / "i.db") as conn, pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM series")


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"x" * 4096)
    with pytest.raises(StoreError):
        store.connect(bad)


def test_patients_studies_series_hierarchy(tmp_path: Path) -> None:
    root = tmp_path / "a"
    write_dicom(
        root / "1.dcm", PatientID="P1", PatientName="A^B", StudyInstanceUID="1.1", SeriesInstanceUID="1.1.1"
    )
    write_dicom(
        root / "2.dcm", PatientID="P1", PatientName="A^B", StudyInstanceUID="1.1", SeriesInstanceUID="1.1.2"
    )
    write_dicom(
        root / "3.dcm", PatientID="P1", PatientName="A^B", StudyInstanceUID="1.2", SeriesInstanceUID="1.2.1"
    )
    write_dicom(
        root / "4.dcm", PatientID="P2", PatientName="C^D", StudyInstanceUID="2.1", SeriesInstanceUID="2.1.1"
    )
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    with store.reading(db) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("patients", "studies", "series")
        ]
        assert counts == [2, 3, 4]
        detail = store.get_series(conn, store.list_series(conn)[0]["SeriesKey"])
        assert detail is not None and detail["total_size"] > 0 and detail["InstitutionName"]
        assert store.get_series(conn, "0" * 40) is None


def test_subtree_range_selects_only_below_the_folder() -> None:
    lo, hi = subtree_range("/nas/a", "/")
    inside, sibling = "/nas/a/b", "/nas/ab"
    assert lo <= inside < hi and not (lo <= sibling < hi)
    lo, hi = subtree_range("Z:\\Image Archiving", "\\")
    assert lo <= "Z:\\Image Archiving\\2019" < hi and not (lo <= "Z:\\Image Archiving2" < hi)
