"""A Firebird catalog (real Firebird server) and the folder walk in the same run agree on one row per file,
whichever comes first, with `file_count` always equal to the rows; and a change in the catalog (a corrected
surname, a deleted image row) reaches the index on the next run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from firebird_server import FirebirdServer, firebird_fixture  # noqa: F401  (the "firebird" fixture)
from pacsindex.index import store
from pacsindex.index.search import search
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.catalog.reader import CatalogSource
from pacsindex.sources.files import LocalTree

pytestmark = pytest.mark.firebird

SCHEMA = [
    """CREATE TABLE IMAGES (
        ID INTEGER NOT NULL PRIMARY KEY,
        SURNAME VARCHAR(60) CHARACTER SET UTF8,
        HOSP_NO VARCHAR(20),
        STUDY_UID VARCHAR(64),
        SERIES_UID VARCHAR(64),
        SERIES_DESC VARCHAR(64),
        MODALITY CHAR(2),
        FILE_PATH VARCHAR(260) CHARACTER SET UTF8,
        INSTANCE_NO INTEGER)""",
]
ROWS = [
    (i, "NDLOVU", "H0001", "1.2.710.9", "1.2.710.9.1", "AXIAL", "CT", f"CT\\IM{i:04d}.j2k", i)
    for i in range(1, 7)
]
ROWS += [
    (i, "NDLOVU", "H0001", "1.2.710.9", "1.2.710.9.2", "SCOUT", "CT", f"SC\\SC{i:04d}.j2k", i) for i in (7, 8)
]
COLUMNS = {
    "path": "FILE_PATH",
    "PatientName": "SURNAME",
    "PatientID": "HOSP_NO",
    "StudyInstanceUID": "STUDY_UID",
    "SeriesInstanceUID": "SERIES_UID",
    "SeriesDescription": "SERIES_DESC",
    "Modality": "MODALITY",
    "InstanceNumber": "INSTANCE_NO",
}


def make_catalog(firebird: FirebirdServer, name: str) -> Path:
    from firebird.driver import create_database

    path = firebird.data / name
    with create_database(
        firebird.dsn(path), user=firebird.user, password=firebird.password, charset="UTF8", overwrite=True
    ) as con:
        for ddl in SCHEMA:
            con.execute_immediate(ddl)
        con.commit()
        with con.cursor() as cur:
            cur.executemany("INSERT INTO IMAGES VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ROWS)
        con.commit()
    return path


def change(firebird: FirebirdServer, path: Path, *statements: str) -> None:
    from firebird.driver import connect

    with connect(firebird.dsn(path), user=firebird.user, password=firebird.password) as con:
        for sql in statements:
            con.execute_immediate(sql)
        con.commit()


def archive(tmp_path: Path) -> Path:
    base = tmp_path / "J2K"
    for row in ROWS:
        f = base / row[7].replace("\\", "/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"\xff\x4f\xff\x51" + bytes([row[0]]) * 100)  # bare JPEG 2000: only the catalog knows
    return base


def catalog_source(firebird: FirebirdServer, path: Path, base: Path, tmp_path: Path) -> CatalogSource:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        "query = 'SELECT * FROM IMAGES ORDER BY ID'\n"
        f"base = {json.dumps(str(base))}\n[columns]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in COLUMNS.items()),
        encoding="utf-8",
    )
    url = f"firebird://{firebird.user}@127.0.0.1:{firebird.port}/{path}"
    return CatalogSource(url, mapping, environ={"PACSINDEX_CATALOG_PASSWORD": firebird.password})


def consistent(db: Path) -> dict[str, Any]:
    """Per series: file_count, and the rows that point at it (which must agree)."""
    with sqlite3.connect(db) as conn:
        files = conn.execute("SELECT count(*), count(DISTINCT dir_id || '/' || name) FROM files").fetchone()
        assert files[0] == files[1], "one row per file"
        series = {
            desc: (count, rows)
            for desc, count, rows in conn.execute(
                """SELECT SeriesDescription, file_count,
                          (SELECT count(*) FROM files f WHERE f.series_id = s.id) FROM series s"""
            )
        }
        statuses = dict(conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
    conn.close()
    for desc, (count, rows) in series.items():
        assert count == rows, f"{desc}: file_count {count} but {rows} rows"
    return {"series": {d: c for d, (c, _) in series.items()}, "statuses": statuses}


@pytest.mark.parametrize("catalog_first", [True, False])
def test_catalog_and_folder_walk_in_one_run_agree(
    firebird: FirebirdServer, tmp_path: Path, catalog_first: bool
) -> None:
    path = make_catalog(firebird, f"agree{int(catalog_first)}.fdb")
    base = archive(tmp_path)
    db = tmp_path / "i.db"
    sources: list[Any] = [catalog_source(firebird, path, base, tmp_path), LocalTree(str(base))]
    if not catalog_first:
        sources.reverse()
    for _ in range(2):  # and the next run changes nothing
        p = run_index(db, sources, ScanOptions(workers=2, job_size=2, commit_files=1, commit_seconds=0))
        assert p.state == "completed" and p.errors == 0
        seen = consistent(db)
        assert seen == {"series": {"AXIAL": 6, "SCOUT": 2}, "statuses": {"dicom": 8}}
    with store.reading(db) as conn:
        assert {r["SeriesDescription"] for r in search(conn, "ndlovu")} == {"AXIAL", "SCOUT"}


def test_catalog_changes_reach_the_index_on_the_next_run(firebird: FirebirdServer, tmp_path: Path) -> None:
    path = make_catalog(firebird, "changes.fdb")
    base = archive(tmp_path)
    db = tmp_path / "i.db"
    run_index(db, [catalog_source(firebird, path, base, tmp_path)], ScanOptions(workers=1))
    assert consistent(db)["series"] == {"AXIAL": 6, "SCOUT": 2}

    change(
        firebird,
        path,
        "UPDATE IMAGES SET SURNAME = 'NDLOVU-DLAMINI'",  # the receptionist corrected the surname
        "DELETE FROM IMAGES WHERE ID = 2",  # and an image was taken out of the study
    )
    p = run_index(db, [catalog_source(firebird, path, base, tmp_path)], ScanOptions(workers=1))
    assert p.state == "completed" and p.files_removed == 1
    assert consistent(db)["series"] == {"AXIAL": 5, "SCOUT": 2}
    with store.reading(db) as conn:
        assert {r["PatientName"] for r in search(conn, "dlamini")} == {"NDLOVU-DLAMINI"}
        names = {r["PatientName"] for r in store.list_series(conn)}
        patients = conn.execute("SELECT count(*) FROM patients").fetchone()[0]
    assert names == {"NDLOVU-DLAMINI"} and patients == 1, "the old spelling is gone, not a second patient"

    again = run_index(db, [catalog_source(firebird, path, base, tmp_path)], ScanOptions(workers=1))
    assert again.files_unchanged == 7 and again.files_from_records == 0
