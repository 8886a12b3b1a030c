"""The web service keeps its header-reading workers between runs (issue 15, point 1): scheduled passes and
the Start button read with the same processes, started when the service starts; a file that kills a worker
costs that file and leaves a whole pool for the next run; a run stopped part-way leaves nothing queued and
the next run completes the index; stopping the service stops the workers; saving the NAS settings ends the
workers' NAS connections made with the old ones."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from warmkit import NotingReader, NotingTree, hold, readers_of, release

from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions
from pacsindex.ingest.warm import WarmPool
from pacsindex.sources.files import Entry, LocalReader
from samba_server import TcpProxy, samba_problem, start_samba
from support_wait import wait_until
from support_web import LiveServer, serve


def series(root: Path, folder: str, names: list[str]) -> list[str]:
    for i, name in enumerate(names):
        write_dicom(root / folder / name, SeriesInstanceUID=f"1.2.826.9.{folder[1:]}", InstanceNumber=i + 1)
    return names


def files(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT name, status FROM files").fetchall())
    finally:
        conn.close()


def runs(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [s for (s,) in conn.execute("SELECT status FROM runs ORDER BY id")]
    finally:
        conn.close()


@contextmanager
def service(
    tmp_path: Path, notes: Path, survey: bool = True, **settings: Any
) -> Iterator[tuple[LiveServer, WarmPool]]:
    archive = tmp_path / "archive"
    notes.mkdir(exist_ok=True)
    config = Settings(db=tmp_path / "pacsindex.db", workers=2, roots=(str(archive),), **settings)
    with serve(
        tmp_path,
        users={"admin": True},
        settings=config,
        scan_options=ScanOptions(workers=2, job_size=1, file_seconds=30, survey=survey),
        source_for=lambda root: NotingTree(root, str(notes)),
    ) as live:
        pool = live.app.state.pacsindex.jobs.pool
        assert isinstance(pool, WarmPool)
        yield live, pool


def begin(live: LiveServer) -> tuple[Any, dict[str, str]]:
    """Start a run as the admin, from the Indexing page's button; the admin's client and CSRF header."""
    client, csrf = live.sign_in("admin")
    r = client.post("/api/index/start", headers=csrf)
    assert r.status_code == 202, r.text
    return client, csrf


def start(live: LiveServer) -> None:
    begin(live)
    wait_until(lambda: not live.app.state.pacsindex.jobs.running, what="the run to end")


def whole(pool: WarmPool, what: str) -> list[int]:
    """The pool's two worker processes, once both run."""
    pids: list[int] = wait_until(lambda: len(pool.pids()) == 2 and pool.pids(), what=what)
    return pids


def test_scheduled_passes_read_with_the_processes_started_with_the_service(tmp_path: Path) -> None:
    archive, notes = tmp_path / "archive", tmp_path / "notes"
    first = series(archive, "S1", [f"A{i}.dcm" for i in range(6)])
    with service(tmp_path, notes, index_every_minutes=0.01, index_full_at="") as (live, pool):
        workers = whole(pool, "the workers to start")
        assert os.getpid() not in workers  # they are processes of their own, started before any run
        wait_until(lambda: all((notes / n).exists() for n in first), what="the first scheduled pass")
        second = series(archive, "S2", [f"B{i}.dcm" for i in range(6)])  # for a later pass to read
        wait_until(lambda: files(live.settings.db).keys() >= {*first, *second}, what="a later pass")
        assert readers_of(notes, first) <= set(workers)
        assert readers_of(notes, second) <= set(workers)
        assert pool.pids() == workers  # none replaced, none added
        assert set(files(live.settings.db).values()) == {"dicom"}


def test_a_file_that_kills_a_worker_costs_that_file_and_the_next_run_finds_a_whole_pool(
    tmp_path: Path,
) -> None:
    archive, notes = tmp_path / "archive", tmp_path / "notes"
    first = series(archive, "S1", ["A0.dcm", "A1.dcm", "KILLS.dcm", "A2.dcm", "A3.dcm"])
    with service(tmp_path, notes) as (live, pool):
        before = whole(pool, "the workers to start")
        start(live)
        got = files(live.settings.db)
        assert got["KILLS.dcm"] == "error"
        assert all(got[n] == "dicom" for n in first if n != "KILLS.dcm")
        assert runs(live.settings.db) == ["completed"]
        after = whole(pool, "a whole pool again")
        assert not set(after) & set(before)  # the broken pool's processes were all replaced

        second = series(archive, "S2", [f"B{i}.dcm" for i in range(6)])
        start(live)
        assert runs(live.settings.db) == ["completed", "completed"]
        assert readers_of(notes, second) <= set(after) and pool.pids() == after
        assert all(files(live.settings.db)[n] == "dicom" for n in second)


def test_a_run_stopped_part_way_leaves_nothing_queued_and_the_next_run_completes(tmp_path: Path) -> None:
    archive, notes = tmp_path / "archive", tmp_path / "notes"
    names = [
        *series(archive, "S1", ["HOLD1.dcm", *(f"A{i}.dcm" for i in range(7))]),
        *series(archive, "S2", ["HOLD2.dcm", *(f"B{i}.dcm" for i in range(7))]),
        # More folders than the run can reach while both reads are held (at most 4 jobs a worker in
        # flight), so jobs are queued when the run is stopped.
        *(n for f in range(3, 7) for n in series(archive, f"S{f}", [f"C{f}{i}.dcm" for i in range(8)])),
    ]
    hold(notes)
    # Files are read in walk order, so the held reads come while most folders are still to be read (the
    # survey of a first index reads one file of every folder first: tests/ingest/test_survey.py).
    with service(tmp_path, notes, survey=False) as (live, pool):
        workers = whole(pool, "the workers to start")
        client, csrf = begin(live)
        wait_until(
            lambda: (notes / "HOLD1.holding").exists() and (notes / "HOLD2.holding").exists(),
            what="both workers to hold a read, with more jobs queued behind them",
        )
        assert client.post("/api/index/stop", headers=csrf).status_code == 200
        release(notes)
        wait_until(lambda: not live.app.state.pacsindex.jobs.running, what="the run to stop")
        assert runs(live.settings.db) == ["cancelled"]
        # How many files the stopped run read depends on how far the walk got (a stopped run finishes the
        # folder it is in); what matters is what the pool holds afterwards and what the next run does.

        start(live)
        assert runs(live.settings.db) == ["cancelled", "completed"]
        got = files(live.settings.db)
        assert sorted(got) == sorted(names) and set(got.values()) == {"dicom"}
        assert pool.pids() == workers  # a clean stop keeps the workers


def test_stopping_the_service_stops_its_workers(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    series(tmp_path / "archive", "S1", ["A0.dcm"])
    with service(tmp_path, notes) as (live, pool):
        workers = whole(pool, "the workers to start")
        start(live)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(lambda: all(gone(p) for p in workers), what="the workers to end with the service")
    assert pool.pids() == []


def test_a_pool_given_back_holds_no_jobs_of_the_run_and_replaces_workers_still_reading(
    tmp_path: Path,
) -> None:
    notes, folder = tmp_path / "notes", tmp_path / "archive" / "S1"
    names = series(folder.parent, "S1", ["HOLD1.dcm", "HOLD2.dcm", *(f"A{i}.dcm" for i in range(6))])
    hold(notes)
    pool = WarmPool(2)
    pool.start()
    try:
        lent = pool.lend(2, 30.0)
        assert lent is pool and pool.lend(2, 30.0) is None  # one run at a time
        reader = NotingReader(str(notes))
        jobs = [lent.submit(reader, [(str(folder), os.sep, entries(folder, [n]))]) for n in names]
        wait_until(
            lambda: (notes / "HOLD1.holding").exists() and (notes / "HOLD2.holding").exists(),
            what="both workers to hold a read, with jobs queued behind them",
        )
        holding = pool.pids()
        lent.release()  # as a run that failed part-way gives it back
        assert all(job.done() for job in jobs)  # none left queued: cancelled, or ended with the workers
        fresh = whole(pool, "new workers")
        assert not set(fresh) & set(holding)

        again = pool.lend(2, 30.0)
        assert again is pool
        read = again.submit(LocalReader(), [(str(folder), os.sep, entries(folder, ["A0.dcm"]))])
        assert read.result(60)[0][0].status == "dicom"
        again.release()
        assert pool.pids() == fresh
    finally:
        pool.close()
    assert pool.lend(2, 30.0) is None and pool.pids() == []


def entries(folder: Path, names: list[str]) -> list[Entry]:
    return [Entry(n, (folder / n).stat().st_size, (folder / n).stat().st_mtime_ns) for n in names]


def test_settings_changed_during_a_run_replace_the_readers_when_the_run_gives_them_back(
    tmp_path: Path,
) -> None:
    archive, notes = tmp_path / "archive", tmp_path / "notes"
    names = series(archive, "S1", ["HOLD1.dcm", *(f"A{i}.dcm" for i in range(5))])
    hold(notes)
    with service(tmp_path, notes, survey=False) as (live, pool):
        workers = whole(pool, "the workers to start")
        begin(live)
        wait_until((notes / "HOLD1.holding").exists, what="a worker to hold a read")
        live.app.state.pacsindex.jobs.nas_changed()  # as saving the NAS settings does
        assert pool.pids() == workers  # the run goes on with the readers it has
        release(notes)
        wait_until(lambda: not live.app.state.pacsindex.jobs.running, what="the run to end")
        assert runs(live.settings.db) == ["completed"] and sorted(files(live.settings.db)) == sorted(names)
        fresh = whole(pool, "the new workers to start")
        assert not set(fresh) & set(workers)  # given back, the old readers were replaced


@pytest.mark.samba
def test_saving_the_nas_settings_ends_the_warm_readers_connections_made_with_the_old_ones(
    tmp_path: Path,
) -> None:
    """The warm readers keep their NAS connections between runs; when an admin saves the NAS settings (a new
    password, another NAS), the connections logged in with the old ones must end, not linger on the NAS."""
    problem = samba_problem()
    if problem:
        pytest.skip(problem)
    archive = tmp_path / "archive"
    series(archive, "S1", [f"A{i}.dcm" for i in range(8)])
    nas_server = start_samba(tmp_path / "samba", {"archive": archive})
    relay = TcpProxy(nas_server.port)
    config = Settings(db=tmp_path / "pacsindex.db", data_dir=tmp_path / "data", workers=2)
    try:
        with serve(
            tmp_path, users={"admin": True}, settings=config, scan_options=ScanOptions(workers=2, job_size=1)
        ) as live:
            pool = live.app.state.pacsindex.jobs.pool
            client, csrf = live.sign_in("admin")
            nas = {
                "host": "127.0.0.1",
                "port": relay.port,
                "share": "archive",
                "user": nas_server.user,
                "password": nas_server.password,
            }
            assert client.put("/api/settings/nas", json=nas, headers=csrf).status_code == 200
            wait_until(lambda: len(pool.pids()) == 2, what="the warm readers to start")
            start(live)
            assert set(files(config.db).values()) == {"dicom"} and len(files(config.db)) == 8
            assert relay.open_sockets >= 4  # the service's own connection and at least one reader's

            assert client.put("/api/settings/nas", json=nas, headers=csrf).status_code == 200
            wait_until(
                lambda: relay.open_sockets == 0, what="every connection made with the old settings to end"
            )
            start(live)  # the new readers connect with the settings saved now
            assert runs(config.db) == ["completed", "completed"]
    finally:
        relay.close()
        nas_server.stop()
