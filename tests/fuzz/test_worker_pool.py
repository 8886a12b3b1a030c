"""The worker pool survives hostile files (issue 14, point 4): a file that kills its worker process, one
that hangs it, one that runs it out of memory each end as an error with a reason, within the per-file
budget, and every other file of the run is indexed; the next run does not read them again."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from crashy import CrashyTree

from conftest import write_dicom
from pacsindex.ingest.scan import ScanOptions, run_index


def tree(root: Path, bad: tuple[str, ...]) -> None:
    for folder in range(3):
        for i in range(8):
            write_dicom(
                root / f"S{folder}" / f"IM{folder}{i}.dcm",
                SeriesInstanceUID=f"1.2.3.4.{folder}",
                InstanceNumber=i + 1,
            )
    for name in bad:  # valid DICOM files: only the reader misbehaves on them
        shutil.copy(root / "S1" / "IM10.dcm", root / "S1" / name)


def statuses(db: Path) -> dict[str, tuple[str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, status, reason FROM files").fetchall()
    finally:
        conn.close()
    return {name: (status, error) for name, status, error in rows}


def test_a_dying_hanging_or_hogging_worker_costs_one_file_each(tmp_path: Path) -> None:
    root, db = tmp_path / "archive", tmp_path / "index.db"
    tree(root, ("KILLS.dcm", "HANGS.dcm", "HOGS.dcm"))
    started = time.monotonic()
    result = run_index(db, [CrashyTree(str(root))], ScanOptions(workers=2, file_seconds=2, job_size=8))
    elapsed = time.monotonic() - started
    assert result.state == "completed"
    got = statuses(db)
    assert got["KILLS.dcm"][0] == "error" and "process died" in (got["KILLS.dcm"][1] or "")
    assert got["HANGS.dcm"][0] == "error" and "longer than 2 s" in (got["HANGS.dcm"][1] or "")
    assert got["HOGS.dcm"][0] == "error" and "MemoryError" in (got["HOGS.dcm"][1] or "")
    good = {n: s for n, s in got.items() if n.startswith("IM")}
    assert len(good) == 24 and all(s == "dicom" for s, _ in good.values())
    assert result.errors == 3 and result.files_processed == 27
    assert elapsed < 120  # bounded: not stuck on the hanging file (a generous bound on a loaded machine)
    again = run_index(db, [CrashyTree(str(root))], ScanOptions(workers=2, file_seconds=2))
    assert again.files_read == 0 and again.files_unchanged == 27


def test_the_survey_of_a_first_index_reads_through_the_same_guarded_workers(tmp_path: Path) -> None:
    """The survey (tests/ingest/test_survey.py) reads one file of each new folder first and the others
    later: a file that kills its worker or hangs it costs that file only, whichever of the two reads it
    was, and no series stays marked as still being indexed."""
    root, db = tmp_path / "archive", tmp_path / "index.db"
    tree(root, ())
    shutil.copy(root / "S0" / "IM00.dcm", root / "S0" / "AKILLS.dcm")
    shutil.copy(root / "S2" / "IM20.dcm", root / "S2" / "ZHANGS.dcm")
    result = run_index(db, [CrashyTree(str(root))], ScanOptions(workers=2, file_seconds=2, job_size=8))
    assert result.state == "completed" and result.errors == 2 and result.files_processed == 26
    got = statuses(db)
    assert got["AKILLS.dcm"][0] == "error" and "process died" in (got["AKILLS.dcm"][1] or "")
    assert got["ZHANGS.dcm"][0] == "error" and "longer than 2 s" in (got["ZHANGS.dcm"][1] or "")
    assert all(status == "dicom" for name, (status, _) in got.items() if name.startswith("IM"))
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*), sum(filling) FROM series").fetchone() == (3, 0)
    finally:
        conn.close()


@pytest.mark.slow
def test_a_read_stuck_where_no_timer_reaches_is_stopped_by_the_watchdog(tmp_path: Path) -> None:
    root, db = tmp_path / "archive", tmp_path / "index.db"
    tree(root, ("STUCK.dcm",))
    result = run_index(db, [CrashyTree(str(root))], ScanOptions(workers=2, file_seconds=1, job_size=4))
    got = statuses(db)
    assert result.state == "completed"
    assert got["STUCK.dcm"][0] == "error" and "longer than" in (got["STUCK.dcm"][1] or "")
    assert sum(1 for s, _ in got.values() if s == "dicom") == 24
