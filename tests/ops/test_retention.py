"""Retention (POPIA s14): `pacsindex purge --dry-run` says what would go and removes nothing; `purge`
removes exactly what is older than the set ages (audit, share links and their logs, finished sends,
sessions, failed sign-ins), keeps links still in force, and is itself audited. Made-up share links from
one address add to one counted row instead of growing the logs."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from opskit import count, live_service

from conftest import run_cli
from pacsindex.accounts.audit import AuditLog
from pacsindex.config.settings import Settings
from pacsindex.index import store
from pacsindex.ops.retention import purge
from pacsindex.share import store as share_store

DAY = 86400.0


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def seed(tmp_path: Path, now: float) -> Settings:
    """Entries on both sides of each age: audit 100 days, shares 30, sends 10, sessions 5, failures 2."""
    settings = Settings(
        db=tmp_path / "pacsindex.db",
        retention_audit_days=100,
        retention_shares_days=30,
        retention_sends_days=10,
        retention_sessions_days=5,
        retention_signin_failures_days=2,
    )
    conn = store.connect(settings.db)
    with conn:
        for age in (101, 99):
            conn.execute(
                "INSERT INTO audit (at, user_name, client, action, detail) VALUES (?, 'alice', '10.0.0.1', "
                "'search', '{}')",
                (iso(now - age * DAY),),
            )
        conn.execute(
            "INSERT INTO users (name, password_hash, created_at, password_changed_at) VALUES ('alice', 'x', "
            "'2020-01-01', '2020-01-01')"
        )
        for i, (state, age) in enumerate(
            [("completed", 11), ("failed", 11), ("completed", 9), ("interrupted", 50)]
        ):
            conn.execute(
                "INSERT INTO orthanc_sends (id, SeriesKey, orthanc_url, started_by, state, started_at, "
                "finished_at) VALUES (?, 'k', 'http://pacs:8042', 'alice', ?, ?, ?)",
                (f"{i:016x}", state, now - age * DAY, None if state == "interrupted" else now - age * DAY),
            )
        for i, age in enumerate((6, 4)):
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_active) "
                "VALUES (?, 1, 'c', ?, ?)",
                (f"h{i}", now - age * DAY, now - age * DAY),
            )
        for age in (3, 1):
            conn.execute(
                "INSERT INTO signin_failures (user_name, client, at) VALUES ('bob', '10.0.0.9', ?)",
                (now - age * DAY,),
            )
    conn.close()
    shares = share_store.connect(settings.shares_path)
    with shares:
        # expired 31 days ago (goes, with its 2 log rows); withdrawn 31 days ago (goes); expired 29 days ago
        # and one still in force (both stay)
        for i, (expires, revoked) in enumerate(
            [(now - 31 * DAY, None), (now + DAY, now - 31 * DAY), (now - 29 * DAY, None), (now + DAY, None)]
        ):
            shares.execute(
                "INSERT INTO shares (token_hash, SeriesKey, created_by, created_at, expires_at, revoked_at) "
                "VALUES (?, 'k', 'alice', ?, ?, ?)",
                (f"t{i}", now - 40 * DAY, expires, revoked),
            )
        for share_id in (1, 1, 3, 4):
            shares.execute(
                "INSERT INTO access_log (at, share_id, kind, client, outcome) "
                "VALUES (?, ?, 'page', 'x', 'ok')",
                (now - 35 * DAY, share_id),
            )
        for age in (31, 29):  # refusals of made-up links
            shares.execute(
                "INSERT INTO access_log (at, share_id, kind, client, outcome) VALUES (?, NULL, 'page', 'x', "
                "'not_found')",
                (now - age * DAY,),
            )
    shares.close()
    return settings


EXPECTED = {
    "audit": 1,
    "shares": 2,
    "share_access": 3,
    "orthanc_sends": 2,
    "sessions": 1,
    "signin_failures": 1,
}


def test_purge_removes_exactly_what_is_older_than_the_ages(tmp_path: Path) -> None:
    now = time.time()
    settings = seed(tmp_path, now)
    before = {
        t: count(settings.db, f"SELECT count(*) FROM {t}") for t in ("audit", "orthanc_sends", "sessions")
    }
    dry = purge(settings, now=now, dry_run=True)
    assert dry.counts == EXPECTED
    assert {t: count(settings.db, f"SELECT count(*) FROM {t}") for t in before} == before  # nothing gone

    done = purge(settings, now=now)
    assert done.counts == EXPECTED
    assert count(settings.db, "SELECT count(*) FROM audit") == 1
    assert count(settings.db, "SELECT count(*) FROM orthanc_sends WHERE state = 'interrupted'") == 1
    assert count(settings.db, "SELECT count(*) FROM orthanc_sends") == 2
    assert count(settings.db, "SELECT count(*) FROM sessions") == 1
    assert count(settings.db, "SELECT count(*) FROM signin_failures") == 1
    conn = sqlite3.connect(settings.shares_path)
    assert [r[0] for r in conn.execute("SELECT id FROM shares ORDER BY id")] == [3, 4]
    assert conn.execute("SELECT count(*) FROM access_log").fetchone()[0] == 3
    conn.close()
    assert purge(settings, now=now).total == 0  # nothing more to do


def test_purge_cli_dry_run_reports_then_purge_removes_and_is_audited(tmp_path: Path) -> None:
    now = time.time()
    settings = seed(tmp_path, now)
    config = tmp_path / "pacsindex.toml"
    config.write_text(
        "retention_audit_days = 100\nretention_shares_days = 30\nretention_sends_days = 10\n"
        "retention_sessions_days = 5\nretention_signin_failures_days = 2\n",
        encoding="utf-8",
    )
    common = ["--db", str(settings.db), "--config", str(config)]
    dry = run_cli("purge", "--dry-run", "--json", *common)
    assert json.loads(dry.stdout)["counts"] == EXPECTED
    assert "would remove 1 audit" in dry.stderr and "would remove 10 entries in all" in dry.stderr
    assert count(settings.db, "SELECT count(*) FROM orthanc_sends") == 4

    done = run_cli("purge", *common)
    assert "removed 2 orthanc sends" in done.stderr and "removed 10 entries in all" in done.stderr
    assert count(settings.db, "SELECT count(*) FROM orthanc_sends") == 2
    entry = AuditLog(settings.db).entries(action="purge")[0]
    assert entry["user"].startswith("cli:") and entry["detail"]["orthanc_sends"] == 2


def test_made_up_share_links_from_one_address_make_one_counted_row(tmp_path: Path) -> None:
    with live_service(tmp_path) as live, live.anon() as anon:
        for _ in range(25):
            assert anon.get("/share/" + "A" * 43).status_code == 404
        other = anon.get("/share/" + "B" * 43)
        assert other.status_code == 404
        live.app.state.pacsindex.audit.flush(10)
        shares = sqlite3.connect(live.settings.shares_path)
        rows = shares.execute(
            "SELECT repeats FROM access_log WHERE outcome = 'not_found' AND kind = 'page'"
        ).fetchall()
        shares.close()
        assert [r[0] for r in rows] == [26]  # a made-up token is a made-up token, whichever
        audit_rows = live.admin.get("/api/audit", params={"action": "share_access"}).json()
        assert [(e["repeats"], e["detail"]["outcome"]) for e in audit_rows] == [(26, "not_found")]
