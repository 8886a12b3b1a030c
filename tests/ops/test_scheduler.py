"""Continuous indexing: `pacsindex serve` brings the index up to date by itself on a schedule, shows the next
run, can be paused by an admin (audited, kept across restarts), warns when a scheduled pass failed; walks
recently changed folders first; `pacsindex index --watch` does the same without the web service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from opskit import add_study, live_service

from pacsindex.config.settings import Settings
from pacsindex.index import store
from pacsindex.index.search import search
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.ops.scheduler import load_schedule, next_full
from pacsindex.sources.files import DirListing, LocalTree, source_for
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer
from support_wait import wait_until

SA = ZoneInfo("Africa/Johannesburg")


def found(db: Path, words: str) -> bool:
    try:
        with store.reading(db) as conn:
            return bool(search(conn, words))
    except Exception:  # no index yet
        return False


def test_a_new_study_becomes_searchable_with_no_request(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    add_study(archive, "NKOSI^THABO", "PID-1", "1.2.826.1")
    with live_service(tmp_path, roots=(str(archive),), index_every_minutes=0.01, index_full_at="") as live:
        db = live.settings.db
        wait_until(lambda: found(db, "nkosi"), what="the first scheduled pass")
        add_study(archive, "DLAMINI^ZANELE", "PID-2", "1.2.826.2")
        wait_until(lambda: found(db, "dlamini zanele"), what="the new study to be indexed")

        shown = live.staff.get("/api/index/schedule").json()
        assert shown["every_minutes"] == 0.01 and not shown["paused"]
        assert shown["next_kind"] == "incremental" and shown["next_run"].endswith("+02:00")
        assert shown["warnings"] == []
        entries = live.admin.get("/api/audit", params={"action": "index_start", "limit": 50}).json()
        assert any(e["user"] == "scheduler" and e["detail"]["roots"] == [str(archive)] for e in entries)


def test_admins_pause_and_resume_the_schedule(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    add_study(archive, "NKOSI^THABO", "PID-1", "1.2.826.1")
    with live_service(tmp_path, roots=(str(archive),), index_full_at="01:30") as live:
        refused = live.staff.put("/api/index/schedule", json={"paused": True}, headers=live.staff_csrf)
        assert refused.status_code == 403
        paused = live.admin.put("/api/index/schedule", json={"paused": True}, headers=live.admin_csrf)
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] and paused.json()["next_run"] is None
        assert load_schedule(live.settings).paused  # kept for the next start
        changed = live.admin.put(
            "/api/index/schedule", json={"paused": False, "every_minutes": 60}, headers=live.admin_csrf
        ).json()
        assert not changed["paused"] and changed["every_minutes"] == 60
        assert changed["next_full"].startswith(
            datetime.fromtimestamp(next_full(datetime.now().timestamp(), "01:30", SA), SA).strftime(
                "%Y-%m-%dT01:30"
            )
        )
        bad = live.admin.put("/api/index/schedule", json={"full_at": "25:00"}, headers=live.admin_csrf)
        assert bad.status_code in (400, 422)
        entries = live.admin.get("/api/audit", params={"action": "index_schedule"}).json()
        assert [e["detail"].get("paused") for e in entries if e["user"] == "admin"] == [False, True]


def test_a_failed_scheduled_pass_shows_a_warning(tmp_path: Path) -> None:
    gone = tmp_path / "not-mounted"
    with live_service(tmp_path, roots=(str(gone),), index_every_minutes=0.01, index_full_at="") as live:
        shown = wait_until(
            lambda: (s := live.staff.get("/api/index/schedule").json())["warnings"] and s,
            what="a warning",
        )
        assert "The last scheduled indexing pass failed" in shown["warnings"][0]
        assert "root not found" in shown["warnings"][0]
        assert shown["last"]["outcome"] == "failed"


def test_next_full_pass_is_at_night_in_practice_time() -> None:
    evening = datetime(2026, 12, 7, 22, 0, tzinfo=SA).timestamp()
    at = datetime.fromtimestamp(next_full(evening, "02:00", SA) or 0, SA)
    assert (at.day, at.hour, at.minute) == (8, 2, 0)
    early = datetime(2026, 12, 7, 1, 0, tzinfo=SA).timestamp()
    assert datetime.fromtimestamp(next_full(early, "02:00", SA) or 0, SA).day == 7
    assert next_full(early, "", SA) is None


def test_the_setting_sets_the_schedule(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "x.db", index_every_minutes=5, index_full_at="03:15")
    schedule = load_schedule(settings)
    assert (schedule.every_minutes, schedule.full_at, schedule.paused) == (5, "03:15", False)


def test_recently_changed_folders_are_walked_first(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    for i, name in enumerate(["20240101", "20261207", "20250601"]):
        add_study(root / name, "A^B", "P", f"1.2.{i}", n=1)
    os.utime(root / "20240101", ns=(10**18, 10**18))
    os.utime(root / "20250601", ns=(2 * 10**18, 2 * 10**18))
    os.utime(root / "20261207", ns=(3 * 10**18, 3 * 10**18))
    order = [
        Path(item.path).parts[-2]
        for item in LocalTree(str(root)).walk(threading.Event())
        if isinstance(item, DirListing) and item.entries
    ]
    assert order == ["20261207", "20250601", "20240101"]


def test_index_watch_keeps_indexing_until_ctrl_c(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    db = tmp_path / "watch.db"
    add_study(archive, "NKOSI^THABO", "PID-1", "1.2.826.1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pacsindex",
            "index",
            str(archive),
            "--db",
            str(db),
            "--watch",
            "1s",
            "--workers",
            "1",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PACSINDEX_")},
    )
    try:
        wait_until(lambda: found(db, "nkosi"), what="the first run")
        add_study(archive, "DLAMINI^ZANELE", "PID-2", "1.2.826.2")
        wait_until(lambda: found(db, "dlamini"), what="a later run")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "next run in 1 s" in err and "Traceback" not in err


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


def test_the_nightly_pass_indexes_with_retries_and_purges(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    add_study(archive, "NKOSI^THABO", "PID-1", "1.2.826.1")
    db = tmp_path / "pacsindex.db"
    store.connect(db).close()
    # Indexed before, weeks ago: a quick pass keeps folders unlisted; the nightly pass lists them all.
    weeks_ago = datetime(2026, 11, 1, tzinfo=SA).timestamp()
    for path in [archive, *archive.rglob("*")]:
        os.utime(path, (weeks_ago, weeks_ago))
    before = run_index(db, [source_for(str(archive))], ScanOptions(workers=1))
    folders = before.folders_listed
    assert run_index(db, [source_for(str(archive))], ScanOptions(workers=1)).folders_listed < folders
    conn = store.connect(db)
    conn.execute(
        "INSERT INTO audit (at, user_name, action) VALUES ('2020-01-01T00:00:00+00:00', 'old', 'signin')"
    )
    conn.close()
    clock = Clock(datetime(2026, 12, 7, 1, 59, 0, tzinfo=SA))
    settings = Settings(
        db=db,
        workers=1,
        roots=(str(archive),),
        index_every_minutes=0,
        index_full_at="02:00",
        retention_audit_days=365,
    )
    app = create_app(settings, clock=clock)
    with ThreadedServer(app, settings):
        scheduler = app.state.ops.scheduler
        assert scheduler.status()["next_kind"] == "full"
        assert scheduler.status()["next_run"] == "2026-12-07T02:00:00+02:00"
        clock.now += 90  # 02:00:30
        scheduler.wake()
        audit = app.state.pacsindex.audit
        wait_until(lambda: audit.entries(action="purge"), what="the nightly purge")
        assert [e["detail"]["kind"] for e in audit.entries(action="index_start")] == ["full"]
        assert audit.entries(user="old") == []
        assert scheduler.status()["next_run"] == "2026-12-08T02:00:00+02:00"
        wait_until(lambda: not app.state.pacsindex.jobs.running, what="the nightly pass to end")
        nightly = app.state.pacsindex.jobs.status()
        assert nightly["state"] == "completed"
        assert nightly["folders_listed"] == folders and nightly["folders_kept"] == 0
