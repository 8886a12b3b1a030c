"""shares.db, the share links' own SQLite file: its schema as SQL text, migrations by `PRAGMA user_version`,
connections in WAL mode, and the `Share` record read from a row. What the links do is `links.py`'s.

It is a file of its own, not tables in the index: the index can be deleted and rebuilt from the archive at
any time, while who was sent which link, and who used it, must outlive that.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from pacsindex.index.clock import iso_utc
from pacsindex.index.db import open_db, token_hash

__all__ = ["MIGRATIONS", "Share", "connect", "iso", "share_from", "token_hash"]

__all__ = [
    "MIGRATIONS",
    "Share",
    "connect",
    "iso",
    "read_share",
    "series_keys_of",
    "share_from",
    "token_hash",
]

MIGRATIONS: list[str] = [
    # 1: share links and who used them
    """
    CREATE TABLE shares (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token_hash TEXT NOT NULL UNIQUE,
        SeriesKey TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        passcode_hash TEXT,
        max_downloads INTEGER,
        downloads INTEGER NOT NULL DEFAULT 0,
        revoked_at REAL,
        revoked_by TEXT,
        failed_passcodes INTEGER NOT NULL DEFAULT 0,
        locked_until REAL
    );
    CREATE INDEX shares_created ON shares(created_at);
    CREATE INDEX shares_creator ON shares(created_by, created_at);
    CREATE TABLE access_log (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        share_id INTEGER REFERENCES shares(id),
        kind TEXT NOT NULL,
        client TEXT,
        user_agent TEXT,
        outcome TEXT NOT NULL,
        bytes_sent INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX access_log_share ON access_log(share_id, at);
    """,
    # 2 (operations, issue 13): identical refusals from one address share a row with a count
    """
    ALTER TABLE access_log ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE access_log ADD COLUMN last_at REAL;
    CREATE INDEX access_log_refusals ON access_log(client, at) WHERE outcome != 'ok';
    """,
    # 3 (sharing a study or several series, issue 17): the series a link is bound to at creation, the
    # "for" note, de-identified links (each with its own secret seed for consistent replacement UIDs).
    # Links made before keep their one series.
    """
    CREATE TABLE share_series (
        share_id INTEGER NOT NULL REFERENCES shares(id),
        position INTEGER NOT NULL,
        SeriesKey TEXT NOT NULL,
        PRIMARY KEY (share_id, position)
    );
    INSERT INTO share_series (share_id, position, SeriesKey) SELECT id, 0, SeriesKey FROM shares;
    ALTER TABLE shares ADD COLUMN note TEXT;
    ALTER TABLE shares ADD COLUMN deidentified INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE shares ADD COLUMN deid_seed TEXT;
    """,
]


def iso(ts: float | None) -> str | None:
    return None if ts is None else iso_utc(ts)


@dataclass(frozen=True, slots=True)
class Share:
    """One link. `SeriesKey` is the first of `series_keys`, the series bound to it when it was made."""

    id: int
    SeriesKey: str
    created_by: str
    created_at: float
    expires_at: float
    has_passcode: bool
    max_downloads: int | None
    downloads: int
    revoked_at: float | None
    revoked_by: str | None
    failed_passcodes: int
    locked_until: float | None
    token_hash: str = field(default="", repr=False)
    series_keys: tuple[str, ...] = ()
    note: str | None = None
    deidentified: bool = False
    deid_seed: str | None = field(default=None, repr=False)

    def status(self, now: float) -> str:
        """revoked, expired, used_up, locked or active: what a recipient would meet right now."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        if self.max_downloads is not None and self.downloads >= self.max_downloads:
            return "used_up"
        if self.locked_until is not None and now < self.locked_until:
            return "locked"
        return "active"

    def public(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "SeriesKey": self.SeriesKey,
            "series_keys": list(self.series_keys or (self.SeriesKey,)),
            "note": self.note,
            "deidentified": self.deidentified,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "has_passcode": self.has_passcode,
            "max_downloads": self.max_downloads,
            "downloads": self.downloads,
            "revoked_at": iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "locked_until": iso(self.locked_until) if self.status(now) == "locked" else None,
            "status": self.status(now),
        }


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating or migrating) the share store (db.open_db: sqlite3 errors become StoreError)."""
    return open_db(path, MIGRATIONS, "share store", foreign_keys=True)


def share_from(row: sqlite3.Row, series_keys: tuple[str, ...] = ()) -> Share:
    return Share(
        id=row["id"],
        SeriesKey=row["SeriesKey"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        has_passcode=row["passcode_hash"] is not None,
        max_downloads=row["max_downloads"],
        downloads=row["downloads"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
        failed_passcodes=row["failed_passcodes"],
        locked_until=row["locked_until"],
        token_hash=row["token_hash"],
        series_keys=series_keys or (row["SeriesKey"],),
        note=row["note"],
        deidentified=bool(row["deidentified"]),
        deid_seed=row["deid_seed"],
    )


def series_keys_of(conn: sqlite3.Connection, share_id: int) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT SeriesKey FROM share_series WHERE share_id = ? ORDER BY position", (share_id,)
    ).fetchall()
    return tuple(r["SeriesKey"] for r in rows)


def read_share(conn: sqlite3.Connection, row: sqlite3.Row) -> Share:
    """The share in `row`, with the series bound to it."""
    return share_from(row, series_keys_of(conn, row["id"]))
