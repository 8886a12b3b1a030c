"""Retention (POPIA s14: keep personal information no longer than needed): what is older than the ages the
admin set is removed, by the nightly pass of the schedule and by `pacsindex purge [--dry-run]`.

| what                         | where     | age counted from           | setting                          |
| ---------------------------- | --------- | -------------------------- | -------------------------------- |
| audit entries                | index     | the entry                  | `retention_audit_days` (7 years) |
| share links and their logs   | shares.db | expiry, or withdrawal      | `retention_shares_days` (1 year) |
| refusals of unknown links    | shares.db | the attempt                | `retention_shares_days`          |
| finished sends to Orthanc    | index     | the end of the send        | `retention_sends_days` (90 days) |
| ended sign-in sessions       | index     | the last activity          | `retention_sessions_days` (30)   |
| failed sign-ins              | index     | the attempt                | `retention_signin_failures_days` |

A share link still in force is never removed, nor a send still running or waiting to resume. A dry run
counts with the same conditions as the purge deletes with; each purge is itself written to the audit log
with its counts (by the caller, who knows who asked).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pacsindex.config.settings import Settings
from pacsindex.errors import StoreError
from pacsindex.index import store
from pacsindex.share import store as share_store

__all__ = ["KINDS", "Purge", "purge"]

DAY = 86400.0
KINDS = ("audit", "shares", "share_access", "orthanc_sends", "sessions", "signin_failures")


@dataclass(frozen=True)
class Purge:
    """What a purge removed (or, for a dry run, would remove), by kind, and the cut-off of each."""

    counts: dict[str, int]
    before: dict[str, str]  # kind → entries before this time (UTC, ISO) go
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def purge(settings: Settings, *, now: float, dry_run: bool = False) -> Purge:
    """Remove (or with `dry_run` only count) everything older than the retention ages."""
    cut = {
        "audit": now - settings.retention_audit_days * DAY,
        "shares": now - settings.retention_shares_days * DAY,
        "share_access": now - settings.retention_shares_days * DAY,
        "orthanc_sends": now - settings.retention_sends_days * DAY,
        "sessions": now - settings.retention_sessions_days * DAY,
        "signin_failures": now - settings.retention_signin_failures_days * DAY,
    }
    index_rules = [
        ("audit", "FROM audit WHERE at < ?", _iso(cut["audit"])),
        (
            "orthanc_sends",
            "FROM orthanc_sends WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at < ?",
            cut["orthanc_sends"],
        ),
        ("sessions", "FROM sessions WHERE last_active < ?", cut["sessions"]),
        ("signin_failures", "FROM signin_failures WHERE at < ?", cut["signin_failures"]),
    ]
    counts = dict.fromkeys(KINDS, 0)
    try:
        conn = store.connect(settings.db)
        try:
            _apply(conn, index_rules, counts, dry_run)
        finally:
            conn.close()
        if Path(settings.shares_path).exists():
            conn = share_store.connect(settings.shares_path)
            try:
                gone = (
                    "(revoked_at IS NOT NULL AND revoked_at < ?) OR (revoked_at IS NULL AND expires_at < ?)"
                )
                old = cut["shares"]
                share_rules = [
                    # the access logs of links that go, then those of unknown links, then the links
                    (
                        "share_access",
                        f"FROM access_log WHERE share_id IN (SELECT id FROM shares WHERE {gone}) "
                        "OR (share_id IS NULL AND coalesce(last_at, at) < ?)",
                        (old, old, cut["share_access"]),
                    ),
                    ("shares", f"FROM shares WHERE {gone}", (old, old)),
                ]
                _apply(conn, share_rules, counts, dry_run)
            finally:
                conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot purge old entries: {exc}") from exc
    return Purge(counts, {k: _iso(v) for k, v in cut.items()}, dry_run)


def _apply(
    conn: sqlite3.Connection,
    rules: Sequence[tuple[str, str, object]],
    counts: dict[str, int],
    dry_run: bool,
) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for kind, where, params in rules:
            args = params if isinstance(params, tuple) else (params,)
            if dry_run:
                counts[kind] += int(conn.execute(f"SELECT count(*) {where}", args).fetchone()[0])
            else:
                counts[kind] += conn.execute(f"DELETE {where}", args).rowcount
        conn.execute("ROLLBACK" if dry_run else "COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
