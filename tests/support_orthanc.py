"""Series for the send-to-Orthanc tests: written, indexed, and looked up by SeriesInstanceUID; and a TCP port
nothing listens on."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

from conftest import write_dicom
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for

__all__ = ["closed_port", "index", "make_series", "series_key", "sop_uids"]


def make_series(root: Path, series_uid: str, n: int, *, name: str = "NKOSI^THABO") -> Path:
    for i in range(n):
        write_dicom(
            root / series_uid / f"IM{i:03d}.dcm",
            PatientName=name,
            PatientID="PID-" + series_uid[-4:],
            StudyInstanceUID=series_uid.rsplit(".", 1)[0],
            SeriesInstanceUID=series_uid,
            InstanceNumber=i + 1,
        )
    return root / series_uid


def index(db: Path, root: Path) -> None:
    result = run_index(db, [source_for(str(root))], ScanOptions(workers=1))
    assert result.state == "completed", result


def series_key(db: Path, series_uid: str) -> str:
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT SeriesKey FROM series WHERE SeriesInstanceUID = ?"
        row = conn.execute(sql, (series_uid,)).fetchone()
    finally:
        conn.close()
    assert row, series_uid
    return str(row[0])


def sop_uids(db: Path, key: str) -> set[str]:
    conn = store.connect(db, readonly=True)
    try:
        series = store.get_series(conn, key)
        assert series
        return {str(f["SOPInstanceUID"]) for f in store.series_files(conn, series["series_id"])}
    finally:
        conn.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed
