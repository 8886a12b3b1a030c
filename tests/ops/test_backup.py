"""Backups: a backup taken while an indexing run is in the middle of writing is a consistent snapshot that
restores and opens with the same counts; the saved settings travel with it; a restore refuses while the web
service runs, and refuses a damaged backup or one from a newer pacsindex, leaving the index as it was."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from opskit import count, live_service

from conftest import run_cli
from pacsindex.config import saved
from pacsindex.config.settings import Settings
from pacsindex.errors import Conflict, PacsIndexError
from pacsindex.index import store
from pacsindex.index.search import search
from pacsindex.ingest.progress import Progress
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.ops.backup import backup, restore
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import source_for

TABLES = ("patients", "studies", "series", "files")


def counts(db: Path) -> dict[str, int]:
    return {t: count(db, f"SELECT count(*) FROM {t}") for t in TABLES}


def test_a_backup_taken_while_a_run_writes_restores_with_the_same_counts(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_sample(archive, patients=6, files=600)
    settings = Settings(db=tmp_path / "live" / "pacsindex.db")
    store.connect(settings.db).close()
    saved.save(settings.data_path, "orthanc", {"url": "http://pacs:8042", "user": "u", "password": "p"})
    mid_run, backed_up = threading.Event(), threading.Event()

    def on_progress(p: Progress) -> None:
        # Hold the run (its batch not yet committed) while the backup is taken.
        if p.files_processed >= 200 and not mid_run.is_set():
            mid_run.set()
            assert backed_up.wait(60)

    options = ScanOptions(workers=1, commit_files=150, progress_files=10)
    results: list[Progress] = []
    run = threading.Thread(
        target=lambda: results.append(
            run_index(settings.db, [source_for(str(archive))], options, on_progress=on_progress)
        )
    )
    run.start()
    try:
        assert mid_run.wait(120)
        manifest = backup(settings, tmp_path / "backup")
    finally:
        backed_up.set()
        run.join(120)
    assert results and results[0].state == "completed"
    taken = manifest["index"]["counts"]
    total = counts(settings.db)["files"]
    assert total >= 600 and 0 < taken["files"] < total  # mid-run: some files, not all

    target = Settings(db=tmp_path / "restored" / "pacsindex.db")
    restore(target, tmp_path / "backup")
    assert counts(target.db) == {t: taken[t] for t in TABLES}
    assert sqlite3.connect(target.db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with store.reading(target.db) as conn:
        assert search(conn, "")  # it opens and answers a search
    assert saved.load(target.data_path, "orthanc")["url"] == "http://pacs:8042"
    assert (target.data_path / "orthanc.json").stat().st_mode & 0o077 == 0


def test_the_cli_backs_up_and_restores(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_sample(archive, patients=2, files=20)
    db = tmp_path / "pacsindex.db"
    run_index(db, [source_for(str(archive))], ScanOptions(workers=1))
    done = run_cli("backup", str(tmp_path / "b1"), "--db", str(db), "--json")
    files = counts(db)["files"]
    assert json.loads(done.stdout)["index"]["counts"]["files"] == files
    assert "backup written to" in done.stderr
    again = run_cli("backup", str(tmp_path / "b1"), "--db", str(db), check=False)
    assert again.returncode != 0 and "not empty" in again.stderr
    db.unlink()
    back = run_cli("restore", str(tmp_path / "b1"), "--db", str(db))
    assert "restored the backup made" in back.stderr
    assert counts(db)["files"] == files
    actions = [r[0] for r in sqlite3.connect(db).execute("SELECT action FROM audit ORDER BY id")]
    assert actions[-1] == "backup"  # the restore itself is in the restored audit log


def test_a_restore_refuses_while_the_service_runs(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_sample(archive, patients=1, files=5)
    settings = Settings(db=tmp_path / "pacsindex.db")
    run_index(settings.db, [source_for(str(archive))], ScanOptions(workers=1))
    backup(settings, tmp_path / "b")
    with live_service(tmp_path):
        with pytest.raises(Conflict, match="stop it first"):
            restore(settings, tmp_path / "b")
        refused = run_cli("restore", str(tmp_path / "b"), "--db", str(settings.db), check=False)
        assert refused.returncode == 7 and "pacsindex serve" in refused.stderr
    restore(settings, tmp_path / "b")  # stopped: now it may


def test_a_damaged_or_newer_backup_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_sample(archive, patients=2, files=40)
    settings = Settings(db=tmp_path / "pacsindex.db")
    run_index(settings.db, [source_for(str(archive))], ScanOptions(workers=1))
    backup(settings, tmp_path / "b")
    before = counts(settings.db)

    newer = tmp_path / "b" / "pacsindex.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(PacsIndexError, match="newer pacsindex"):
        restore(settings, tmp_path / "b")

    backup(settings, tmp_path / "c")
    damaged = tmp_path / "c" / "pacsindex.db"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    damaged.write_bytes(bytes(data))
    with pytest.raises(PacsIndexError, match="damaged|not a usable|does not match"):
        restore(settings, tmp_path / "c")
    assert counts(settings.db) == before
