"""Indexing runs end to end: incremental re-scans, kill -9 and resume, reading while a run writes,
unreadable folders, vanishing files, cancellation, progress events."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import write_dicom
from pacsindex.errors import Conflict
from pacsindex.index import store
from pacsindex.index.locking import WriterLock
from pacsindex.index.search import search
from pacsindex.ingest.progress import Progress
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import DirListing, Entry, LocalReader, LocalTree, WalkError


def index(root: Path, db: Path, **kw) -> Progress:
    return run_index(db, [LocalTree(str(root))], ScanOptions(workers=kw.pop("workers", 1), **kw))


def file_counts(db: Path) -> dict[str, int]:
    with store.reading(db) as conn:
        return {r["SeriesInstanceUID"]: r["file_count"] for r in store.list_series(conn)}


def consistency(db: Path) -> None:
    """Every series' file_count equals its DICOM file rows; no empty series; the database is sound."""
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    bad = conn.execute(
        "SELECT count(*) FROM series s"
        " WHERE file_count != (SELECT count(*) FROM files WHERE series_id = s.id)"
        " OR file_count = 0"
    ).fetchone()[0]
    assert bad == 0
    conn.close()


def test_first_index_groups_files_by_series(dicom_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    p = index(dicom_tree, db)
    assert p.state == "completed"
    assert (p.enumerated_files, p.files_processed, p.files_read, p.files_unchanged) == (7, 7, 7, 0)
    assert p.series_count == 3 and p.errors == 0 and p.non_dicom == 0
    assert file_counts(db) == {"1.2.3.4.1": 3, "1.2.3.4.2": 2, "9.8.7.1": 2}
    consistency(db)


def test_rescan_reads_only_new_and_changed_files_and_drops_gone_ones(
    dicom_tree: Path, tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    index(dicom_tree, db)
    again = index(dicom_tree, db)
    assert (again.files_read, again.files_unchanged, again.files_removed) == (0, 7, 0)

    write_dicom(dicom_tree / "MULLER" / "CT" / "IM9.dcm", PatientName="MÜLLER^HANS", InstanceNumber=9)  # new
    changed = dicom_tree / "IVANOV" / "IMG0"
    write_dicom(
        changed,
        PatientName="Иванов^Иван",
        charset="ISO_IR 144",
        StudyInstanceUID="9.8.7",
        SeriesInstanceUID="9.8.7.2",
        SeriesNumber=5,
        InstanceNumber=1,
    )  # moved to another series
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    (dicom_tree / "MULLER" / "SCOUT" / "IM0.dcm").unlink()  # gone
    # A quick pass lists only folders whose time moved: the new and the gone file are found, the file
    # rewritten in place (its folder's time did not move) waits for a full pass.
    p = index(dicom_tree, db)
    assert (p.files_read, p.files_removed) == (1, 1)
    p = index(dicom_tree, db, full=True)
    assert (p.files_read, p.files_unchanged, p.files_removed) == (1, 6, 0)
    assert file_counts(db) == {"1.2.3.4.1": 4, "1.2.3.4.2": 1, "9.8.7.1": 1, "9.8.7.2": 1}
    consistency(db)

    shutil.rmtree(dicom_tree / "MULLER" / "SCOUT")  # a whole folder gone: its series goes too
    p = index(dicom_tree, db)
    assert p.files_removed == 1
    assert "1.2.3.4.2" not in file_counts(db)
    consistency(db)


def test_limit_stops_after_n_files_and_removes_nothing(dicom_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    index(dicom_tree, db)
    p = index(dicom_tree, db, limit=3)
    assert p.files_processed == 3 and p.files_removed == 0
    assert "--limit" in (p.message or "")
    assert sum(file_counts(db).values()) == 7


def test_traps_in_one_run(tmp_path: Path) -> None:
    """A tree with what real NAS trees hold: one run, nothing lost, bad files are data."""
    root = tmp_path / "nas"
    write_dicom(root / "a" / "IM1.dcm", SeriesInstanceUID="1.1")
    write_dicom(root / "a" / "IM2", SeriesInstanceUID="1.1", InstanceNumber=2)  # no extension
    write_dicom(root / "raw" / "OLD0001", preamble=False, SeriesInstanceUID="1.2")  # no preamble/meta
    write_dicom(root / "impl" / "I.dcm", implicit=True, SeriesInstanceUID="1.3")
    write_dicom(root / "big" / "B.dcm", private_blob=3 * 1024 * 1024, SeriesInstanceUID="1.4")
    write_dicom(root / "nouid" / "N.dcm", SeriesInstanceUID=None, SeriesNumber=None)  # folder fallback
    (root / "x.dcm").mkdir()
    write_dicom(root / "x.dcm" / "inside.dcm", SeriesInstanceUID="1.5")
    (root / "a" / "Thumbs.db").write_bytes(b"\x00\x01\x02garbage")
    (root / "a" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    (root / "zero.dcm").write_bytes(b"")
    full = (root / "a" / "IM1.dcm").read_bytes()
    (root / "cut.dcm").write_bytes(full[:300])
    (root / "junk.dcm").write_bytes(b"\x00" * 128 + b"DICM" + os.urandom(2000))
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)

    db = tmp_path / "i.db"
    p = index(root, db, workers=2)
    assert p.state == "completed"
    assert p.files_processed == 12
    assert p.non_dicom == 2 and p.errors == 3
    assert p.series_count == 6
    with store.reading(db) as conn:
        reasons = {Path(r["path"]).name: r["reason"] for r in store.problems(conn)}
    assert set(reasons) == {"zero.dcm", "cut.dcm", "junk.dcm"}
    assert "empty" in reasons["zero.dcm"] and "truncated" in reasons["cut.dcm"]
    consistency(db)


class ListedButVanishing:
    """A source that lists a file which is gone by the time it is read (deleted mid-run on the NAS)."""

    label = "vanishing"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def check(self) -> None:
        pass

    def walk(self, cancel: threading.Event, skip=None) -> Iterator[DirListing | WalkError]:
        entries = [
            Entry(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(self.folder.iterdir())
        ]
        (self.folder / "IM1.dcm").unlink()  # removed after listing, before reading
        yield DirListing(str(self.folder), os.sep, entries, True)

    def reader(self) -> LocalReader:
        return LocalReader()

    def complete_roots(self) -> list[tuple[str, str]]:
        return [(str(self.folder), os.sep)]


def test_file_deleted_between_listing_and_reading(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    for i in range(3):
        write_dicom(folder / f"IM{i}.dcm", InstanceNumber=i)
    db = tmp_path / "i.db"
    p = run_index(db, [ListedButVanishing(folder)], ScanOptions(workers=1))
    assert p.state == "completed" and p.errors == 1 and p.files_processed == 3
    with store.reading(db) as conn:
        assert [r["reason"] for r in store.problems(conn)][0].startswith("vanished")
    assert file_counts(db) == {"1.2.3.4.1": 2}


def test_cancel_stops_cleanly_and_next_run_resumes(tmp_path: Path) -> None:
    root = big_tree(tmp_path / "big", series=20, per_series=50)
    db = tmp_path / "i.db"
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.files_processed >= 200:
            cancel.set()

    p = run_index(db, [LocalTree(str(root))], ScanOptions(workers=1, commit_files=100), on_progress, cancel)
    assert p.state == "cancelled"
    done = sum(file_counts(db).values())
    assert 0 < done < 1000
    p2 = index(root, db)
    assert p2.state == "completed"
    assert p2.files_unchanged == done and p2.files_read == 1000 - done
    assert sum(file_counts(db).values()) == 1000
    consistency(db)


def index_rows(db: Path) -> list[tuple]:
    """What the index holds, without ids: every file with its folder, status and series."""
    with store.reading(db) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                "SELECT d.path, f.name, f.size, f.mtime_ns, f.status, s.SeriesInstanceUID, s.file_count"
                " FROM files f JOIN dirs d ON d.id = f.dir_id LEFT JOIN series s ON s.id = f.series_id"
                " ORDER BY d.path, f.name"
            )
        ]


class RecordingReader(LocalReader):
    """A local reader with the `prefetch` hook an SMB reader has; remembers each batch it was asked for."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def prefetch(self, paths: list[str]):
        self.batches.append(list(paths))
        return self.open


class RecordingTree(LocalTree):
    def __init__(self, root: str, reader: RecordingReader) -> None:
        super().__init__(root)
        self._reader = reader

    def reader(self) -> RecordingReader:
        return self._reader


def test_many_small_folders_share_jobs_and_a_cancelled_run_resumes_to_the_same_index(tmp_path: Path) -> None:
    """Series folders of a few files each: several folders go to a worker in one job (one prefetch for
    all of them), every series is counted right, and a run cancelled half-way resumes to the same index."""
    root = big_tree(tmp_path / "small", series=160, per_series=5)  # 800 files in 160 folders
    reference = tmp_path / "ref.db"
    reader = RecordingReader()
    p = run_index(reference, [RecordingTree(str(root), reader)], ScanOptions(workers=1))
    assert (p.state, p.files_processed, p.files_read, p.series_count) == ("completed", 800, 800, 160)
    assert file_counts(reference) == {f"1.2.{s}": 5 for s in range(160)}
    consistency(reference)
    assert sum(len(b) for b in reader.batches) == 800
    assert max(len(b) for b in reader.batches) <= ScanOptions().job_size
    folders_per_job = [len({Path(path).parent for path in batch}) for batch in reader.batches]
    assert max(folders_per_job) > 1 and len(reader.batches) < 160, "small folders share a job"

    db = tmp_path / "i.db"
    cancel = threading.Event()

    def on_progress(progress: Progress) -> None:
        if progress.files_processed >= 150:
            cancel.set()

    p = run_index(db, [LocalTree(str(root))], ScanOptions(workers=2, commit_files=100), on_progress, cancel)
    assert p.state == "cancelled"
    consistency(db)
    done = sum(file_counts(db).values())
    assert 0 < done < 800
    p2 = index(root, db, workers=2)
    assert p2.state == "completed" and p2.series_count == 160
    assert (p2.files_unchanged, p2.files_read) == (done, 800 - done), "finished files are not read again"
    consistency(db)
    assert index_rows(db) == index_rows(reference)


def test_progress_events_and_eta(dicom_tree: Path, tmp_path: Path) -> None:
    events: list[Progress] = []
    run_index(
        tmp_path / "i.db",
        [LocalTree(str(dicom_tree))],
        ScanOptions(workers=1, progress_files=1),
        events.append,
    )
    assert events[-1].state == "completed" and not events[-1].running
    assert events[-1].percent == 100.0
    assert all(a.files_processed <= b.files_processed for a, b in zip(events, events[1:], strict=False))
    assert events[0].started_at is not None and events[-1].last_updated is not None


def test_one_run_per_index_at_a_time(tmp_path: Path, dicom_tree: Path) -> None:
    db = tmp_path / "i.db"
    with WriterLock(db):
        with pytest.raises(Conflict, match="another indexing run"):
            index(dicom_tree, db)


# -- runs in separate processes, as users start them ---------------------------------------------------


def big_tree(root: Path, series: int = 60, per_series: int = 100) -> Path:
    """Many files fast: one real DICOM file per series, its bytes written again under other names."""
    for s in range(series):
        template = write_dicom(
            root / f"P{s % 10}" / f"S{s}" / "IM0000.dcm",
            SeriesInstanceUID=f"1.2.{s}",
            StudyInstanceUID=f"1.3.{s % 10}",
            PatientName=f"PATIENT{s % 10}^TEST",
            PatientID=f"PID{s % 10}",
        )
        data = template.read_bytes()
        for i in range(1, per_series):
            (template.parent / f"IM{i:04d}.dcm").write_bytes(data)
    return root


def start_index(root: Path, db: Path, status: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pacsindex",
            "index",
            str(root),
            "--db",
            str(db),
            "--workers",
            "1",
            "--status-file",
            str(status),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_status(status: Path, proc: subprocess.Popen[str], predicate, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads(status.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            data = None  # not written yet (the file is replaced atomically, never half-written)
        if data is not None and predicate(data):
            return data
        try:  # wait a moment for the run to end; it must not end before the status says what we wait for
            proc.wait(timeout=0.005)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the run ended first: {proc.stderr.read() if proc.stderr else ''}")
    raise AssertionError("status never reached the expected state")


def test_kill_9_mid_run_then_resume(tmp_path: Path) -> None:
    root = big_tree(tmp_path / "big")
    # On a loaded machine the run can get through the last file between our reading its status and the
    # kill landing; then that attempt tested nothing, and a fresh index is killed again.
    for attempt in range(3):
        db, status = tmp_path / f"i{attempt}.db", tmp_path / f"status{attempt}.json"
        proc = start_index(root, db, status)
        wait_status(status, proc, lambda d: d["series_count"] >= 5 and d["files_processed"] >= 1000)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # reaps it and closes its pipes
        consistency(db)
        committed = sum(file_counts(db).values())
        if committed < 6000:
            break
    assert 0 < committed < 6000, "the run was never caught before its end"

    out = subprocess.run(
        [sys.executable, "-m", "pacsindex", "index", str(root), "--db", str(db), "--json", "--workers", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(out.stdout)
    assert summary["files_processed"] == 6000
    assert summary["files_unchanged"] == committed, "finished files are not read again"
    assert summary["files_read"] == 6000 - committed
    assert summary["series_count"] == 60
    assert sum(file_counts(db).values()) == 6000, "nothing counted twice"
    consistency(db)
    with store.reading(db) as conn:
        states = [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
    assert states == ["interrupted", "completed"]


def test_search_sees_partial_results_while_a_run_writes(tmp_path: Path) -> None:
    root = big_tree(tmp_path / "big")
    db, status = tmp_path / "i.db", tmp_path / "status.json"
    proc = start_index(root, db, status)
    try:
        wait_status(status, proc, lambda d: d["series_count"] >= 1)
        with store.reading(db) as conn:
            name = search(conn, "", limit=1)[0]["PatientName"]  # e.g. PATIENT7^TEST
            rows = search(conn, name.replace("^", " ").lower(), limit=1000)
            everything = sum(r["file_count"] for r in search(conn, "", limit=1000))
        still_running = proc.poll() is None
        assert rows and all(r["PatientName"] == name for r in rows)
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "pacsindex",
                "search",
                "patient",
                "--db",
                str(db),
                "--json",
                "--limit",
                "1000",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(cli.stdout)
        if still_running:
            assert everything < 6000, "a search during the run sees the batches written so far"
    finally:
        proc.communicate(timeout=300)  # reaps it and closes its pipes
    assert proc.returncode == 0
    with store.reading(db) as conn:
        assert sum(r["file_count"] for r in search(conn, "patient1", limit=1000)) == 600


def test_unreadable_folder_is_an_error_and_keeps_its_indexed_files(tmp_path: Path) -> None:
    """Run as an unprivileged user (root reads everything), so permissions really deny the listing."""
    if shutil.which("setpriv") is None and os.geteuid() == 0:
        pytest.skip("needs setpriv to drop root privileges")
    base = Path(tempfile.mkdtemp(prefix="pacsindex-perm-"))
    try:
        base.chmod(0o777)
        root = base / "nas"
        write_dicom(root / "open" / "A.dcm", SeriesInstanceUID="5.1")
        write_dicom(root / "locked" / "B.dcm", SeriesInstanceUID="5.2")
        for p in [root, *root.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o666)
        db = base / "i.db"
        cmd = [
            sys.executable,
            "-m",
            "pacsindex",
            "index",
            str(root),
            "--db",
            str(db),
            "--json",
            "--workers",
            "1",
        ]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        first = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        assert first["errors"] == 0 and first["series_count"] == 2
        (root / "locked").chmod(0o000)
        # A lock changes no folder's time: a quick pass would not list it; a full pass tries and fails.
        proc = subprocess.run([*cmd, "--full"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        second = json.loads(proc.stdout)
        assert second["errors"] == 1
        assert second["series_count"] == 2, "files under a folder we could not list are kept, not dropped"
        with store.reading(db) as conn:
            problems = store.problems(conn)
        assert any(p["path"].endswith("locked") and "permission denied" in p["reason"] for p in problems)
    finally:
        for p in [base, *base.rglob("*")]:
            try:
                p.chmod(0o777)
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)


def test_by_default_headers_are_read_in_processes_of_their_own_even_on_one_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that crashes or hangs its reader may only cost that file (issue 14): that needs the reader in a
    process of its own, also on a practice's one-CPU virtual machine. Only `workers = 1` asked for reads in
    the indexing process itself."""
    from warmkit import NotingTree, readers_of

    from pacsindex.ingest import scan

    archive, notes = tmp_path / "archive", tmp_path / "notes"
    names = [f"IM{i}.dcm" for i in range(3)]
    for i, name in enumerate(names):
        write_dicom(archive / "S1" / name, InstanceNumber=i + 1)
    notes.mkdir()
    monkeypatch.setattr(scan, "default_workers", lambda: 1)  # one CPU
    p = run_index(tmp_path / "default.db", [NotingTree(str(archive), str(notes))], ScanOptions())
    assert p.state == "completed" and p.files_read == 3
    readers = readers_of(notes, names)
    assert len(readers) == 1 and os.getpid() not in readers
    asked = run_index(tmp_path / "one.db", [NotingTree(str(archive), str(notes))], ScanOptions(workers=1))
    assert asked.files_read == 3 and readers_of(notes, names) == {os.getpid()}
