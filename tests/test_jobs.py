"""Indexing in the background of the server process: one run at a time, stop, status from memory while it
runs, from the status file or the index when this process has run nothing, and partial results visible to
searches while a run goes. A gate in the source holds a run in the middle, so nothing depends on timing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pacsindex.errors import Conflict, InvalidQuery, SourceError
from pacsindex.index import store
from pacsindex.index.search import search
from pacsindex.ingest.jobs import IndexJobs
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import DirKept, DirListing, LocalTree, Reader, SkipFn, WalkError


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


class GatedTree:
    """A local tree whose walk stops after `before_gate` folders until `gate` is set (or the run is
    cancelled), so a test can look at a run in the middle."""

    def __init__(self, root: str, gate: threading.Event, before_gate: int = 3) -> None:
        self.inner = LocalTree(root)
        self.label = self.inner.label
        self.gate = gate
        self.before_gate = before_gate
        self.at_gate = threading.Event()

    def check(self) -> None:
        self.inner.check()

    def reader(self) -> Reader:
        return self.inner.reader()

    def complete_roots(self) -> list[tuple[str, str]]:
        return self.inner.complete_roots()

    def walk(
        self, cancel: threading.Event, skip: SkipFn | None = None
    ) -> Iterator[DirListing | DirKept | WalkError]:
        walker = self.inner.walk(cancel, skip)
        try:
            for number, item in enumerate(walker):
                if number == self.before_gate:
                    self.at_gate.set()
                    while not self.gate.wait(0.02):
                        if cancel.is_set():
                            return
                yield item
        finally:
            walker.close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobs") / "archive"
    write_sample(root, patients=8, files=300)
    return root


OPTIONS = ScanOptions(workers=1, commit_seconds=0.0, progress_seconds=0.0)


def make_jobs(tmp_path: Path, factory: Callable[[str], object] | None = None) -> IndexJobs:
    return IndexJobs(
        tmp_path / "i.db",
        factory or (lambda root: LocalTree(root)),  # type: ignore[arg-type,return-value]
        options=OPTIONS,
        status_path=tmp_path / "index_status.json",
    )


def test_a_background_run_completes_and_reports_like_the_status_file(archive: Path, tmp_path: Path) -> None:
    jobs = make_jobs(tmp_path)
    first = jobs.start([str(archive)], started_by="alice")
    assert first["running"] and first["started_by"] == "alice" and first["roots"] == [str(archive)]
    assert jobs.wait(60)
    status = jobs.status()
    assert status["state"] == "completed" and not status["running"]
    assert status["percent"] == 100.0 and status["enumeration_done"]
    assert status["files_processed"] == status["enumerated_files"] == 304  # 300 DICOM + 4 others
    assert status["series_count"] > 0 and status["eta_s"] == 0.0
    on_disk = json.loads((tmp_path / "index_status.json").read_text(encoding="utf-8"))
    assert on_disk["state"] == "completed" and on_disk["files_processed"] == 304
    with store.reading(tmp_path / "i.db") as conn:
        assert store.has_index(conn)
        assert search(conn, "müller")[0]["PatientName"] == "MÜLLER^HANS"


def test_one_run_at_a_time_and_stop(archive: Path, tmp_path: Path) -> None:
    gate = threading.Event()
    sources: list[GatedTree] = []

    def gated(root: str) -> GatedTree:
        sources.append(GatedTree(root, gate))
        return sources[-1]

    jobs = make_jobs(tmp_path, gated)
    jobs.start([str(archive)])
    assert sources[0].at_gate.wait(30)
    with pytest.raises(Conflict):
        jobs.start([str(archive)])
    status = jobs.status()
    assert status["running"] and status["percent"] is None  # the total is not known yet
    stopped = jobs.stop()
    assert stopped["running"] or stopped["state"] == "cancelled"
    assert jobs.wait(30)
    assert jobs.status()["state"] == "cancelled"
    with pytest.raises(Conflict):
        jobs.stop()
    gate.set()
    jobs.start([str(archive)])  # a new run may start once the last one ended
    assert jobs.wait(60) and jobs.status()["state"] == "completed"


def test_searches_see_the_series_written_so_far_while_a_run_goes(archive: Path, tmp_path: Path) -> None:
    gate = threading.Event()
    source = GatedTree(str(archive), gate, before_gate=10)
    jobs = make_jobs(tmp_path, lambda root: source)
    jobs.start([str(archive)])
    assert source.at_gate.wait(30)
    wait_until(lambda: jobs.status()["series_count"] > 0)
    with store.reading(tmp_path / "i.db") as conn:
        partial = len(search(conn, limit=1000))
    assert 0 < partial
    gate.set()
    assert jobs.wait(60)
    with store.reading(tmp_path / "i.db") as conn:
        assert len(search(conn, limit=1000)) > partial


def test_a_root_that_cannot_be_read_fails_at_once_not_later(tmp_path: Path) -> None:
    jobs = make_jobs(tmp_path)
    with pytest.raises(SourceError, match="not found"):
        jobs.start([str(tmp_path / "no such folder")])
    with pytest.raises(InvalidQuery):
        jobs.start([])
    with pytest.raises(InvalidQuery):
        jobs.start(["bad\x00root"])
    assert not jobs.running and jobs.status()["state"] == "idle"


def test_before_any_run_here_status_shows_the_last_run_on_record(archive: Path, tmp_path: Path) -> None:
    run_index(tmp_path / "i.db", [LocalTree(str(archive))], OPTIONS)  # e.g. `pacsindex index` earlier
    status = make_jobs(tmp_path).status()  # no status file: from the index's runs table
    assert status["state"] == "completed" and status["files_processed"] == 304
    assert status["series_count"] > 0 and status["roots"] == [str(archive)]


def test_a_status_file_left_by_a_dead_run_reads_interrupted(tmp_path: Path) -> None:
    store.connect(tmp_path / "i.db").close()
    left = {
        "enumerated_files": 10,
        "files_processed": 4,
        "files_read": 4,
        "files_unchanged": 0,
        "files_removed": 0,
        "series_count": 1,
        "errors": 0,
        "non_dicom": 0,
        "running": True,
        "started_at": "2025-06-01T10:00:00+02:00",
        "last_updated": "2025-06-01T10:00:05+02:00",
        "state": "running",
        "roots": ["/mnt/pacs"],
        "percent": 40.0,
        "files_per_s": 3.0,
        "eta_s": 2.0,
        "run_id": 7,
        "enumeration_done": True,
        "message": None,
    }
    (tmp_path / "index_status.json").write_text(json.dumps(left), encoding="utf-8")
    status = make_jobs(tmp_path).status()
    assert status["state"] == "interrupted" and not status["running"] and status["files_processed"] == 4
