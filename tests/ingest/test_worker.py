"""The header-reading worker pool: a small run reads in its own process and never starts workers, a long run
hands over to them once they are up with the same index as a run without workers, and the web service keeps
its pool warm from one run to the next."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsindex.ingest.jobs import IndexJobs
from pacsindex.ingest.scan import Run, ScanOptions
from pacsindex.ingest.worker import ReadPool
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def rows(db: Path) -> set[tuple[object, ...]]:
    """What a user can find: every file with its status and the series, study and patient it belongs to."""
    with sqlite3.connect(db) as conn:
        return set(
            conn.execute(
                "SELECT d.path || d.sep || f.name, f.status, s.SeriesInstanceUID, s.SeriesDescription,"
                " st.StudyInstanceUID, p.PatientName, p.PatientID"
                " FROM files f JOIN dirs d ON d.id = f.dir_id"
                " LEFT JOIN series s ON s.id = f.series_id LEFT JOIN studies st ON st.id = s.study_id"
                " LEFT JOIN patients p ON p.id = st.patient_id"
            )
        )


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pool") / "archive"
    write_sample(root, patients=6, files=600)
    return root


def test_a_small_run_reads_in_its_own_process_and_starts_no_workers(tmp_path: Path) -> None:
    root = tmp_path / "cd"
    write_sample(root, patients=1, files=5)
    pool = ReadPool(2)
    progress = Run(tmp_path / "i.db", [LocalTree(str(root))], ScanOptions(workers=2), pool=pool).run()
    assert progress.state == "completed" and progress.files_read >= 5 and progress.errors == 0
    assert not pool.started  # no process was spawned for five files


def test_a_long_run_hands_over_to_the_workers_and_indexes_the_same(archive: Path, tmp_path: Path) -> None:
    plain = Run(tmp_path / "plain.db", [LocalTree(str(archive))], ScanOptions(workers=1)).run()
    pool = ReadPool(2)
    try:
        pool.start()
        wait_until(lambda: pool.ready)  # workers up from the start: every job goes to them
        pooled = Run(
            tmp_path / "pooled.db", [LocalTree(str(archive))], ScanOptions(workers=2, job_size=16), pool=pool
        ).run()
        assert pool.pids and len(pool.pids) <= 2
    finally:
        pool.shutdown()
    assert pooled.files_read == plain.files_read == pooled.files_processed
    assert rows(tmp_path / "pooled.db") == rows(tmp_path / "plain.db")
    # A run that starts its own pool part-way (after 0 s of reading here) gives the same index too.
    handed = Run(
        tmp_path / "handed.db", [LocalTree(str(archive))], ScanOptions(workers=2, pool_after_seconds=0.0)
    ).run()
    assert handed.state == "completed"
    assert rows(tmp_path / "handed.db") == rows(tmp_path / "plain.db")


def test_the_web_service_keeps_its_workers_warm_between_runs(archive: Path, tmp_path: Path) -> None:
    jobs = IndexJobs(
        tmp_path / "i.db", LocalTree, options=ScanOptions(workers=2, pool_after_seconds=0.0, job_size=16)
    )
    try:
        jobs.start([str(archive)])
        assert jobs.wait(120)
        assert jobs.pool is not None and jobs.pool.started  # the run read long enough to start workers
        wait_until(lambda: jobs.pool is not None and len(jobs.pool.pids) == 2)
        workers = jobs.pool.pids
        (archive.parent / "extra").mkdir(exist_ok=True)
        jobs.start([str(archive), str(archive.parent / "extra")])
        assert jobs.wait(120)
        assert jobs.status()["state"] == "completed"
        assert jobs.pool.pids == workers  # the same processes: the second run paid no start-up
    finally:
        jobs.shutdown()
    assert not jobs.pool.started


def test_workers_do_not_run_the_command_line_script_again(tmp_path: Path) -> None:
    # The `pacsindex` console script is a file whose top level imports the whole command line; a spawned
    # worker would import it again (as `__mp_main__`) unless the pool spawns its workers without it.
    marker = tmp_path / "imported.txt"
    script = tmp_path / "console_script.py"
    script.write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).open('a').write(__name__ + '\\n')\n"
        "from pacsindex.ingest.worker import ReadPool\n"
        "if __name__ == '__main__':\n"
        "    import time\n"
        "    pool = ReadPool(2)\n"
        "    pool.start()\n"
        "    deadline = time.monotonic() + 60\n"
        "    while len(pool.pids) < 2 or not pool.ready:\n"
        "        assert time.monotonic() < deadline\n"
        "        time.sleep(0.01)\n"
        "    pool.shutdown()\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    assert marker.read_text().split() == ["__main__"]


def test_a_run_that_ends_while_its_workers_start_leaves_no_process(tmp_path: Path) -> None:
    root = tmp_path / "cd"
    write_sample(root, patients=1, files=20)
    progress = Run(
        tmp_path / "i.db", [LocalTree(str(root))], ScanOptions(workers=2, pool_after_seconds=0.0, job_size=4)
    ).run()
    assert progress.state == "completed" and progress.errors == 0
    assert multiprocessing.active_children() == []
