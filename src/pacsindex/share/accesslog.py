"""A share link's access log: one row per use of a link, refused or not (time, kind of use, client
address, user agent, outcome, bytes sent). Rows are written by `links.Shares`; a download's row is updated
with the bytes sent and how it ended once its stream stops.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

from pacsindex.share.store import iso

__all__ = ["KINDS", "OUTCOMES", "Kind", "clip", "finish", "read", "write"]

# download: Download pressed (one of a limited link's downloads); zip: the zip's bytes sent under that
# press (whole, a Range of it, or HEAD), as often as the recipient's browser asks.
# view: the recipient opened the image viewer; image: one image drawn in it (checked like any use, but only
# refusals are logged: a scroll through a series would otherwise be hundreds of rows).
Kind = Literal["page", "passcode", "files", "download", "zip", "file", "view", "image"]
KINDS = ("page", "passcode", "files", "download", "zip", "file", "view", "image")
OUTCOMES = (
    "ok",
    "incomplete",  # a download that stopped before its last byte
    "stalled",  # a download whose client read nothing for share_stall_seconds: its slot was taken back
    "expired",
    "revoked",
    "bad_passcode",
    "passcode_required",
    "not_found",
    "limited",
    "locked",
    "busy",  # too many downloads at once (for everyone, this link or this client)
)


def clip(text: str | None, limit: int = 256) -> str | None:
    return None if text is None else text[:limit]


def write(
    conn: sqlite3.Connection,
    share_id: int | None,
    kind: str,
    client: str | None,
    user_agent: str | None,
    outcome: str,
    at: float,
) -> int:
    cur = conn.execute(
        """INSERT INTO access_log (at, share_id, kind, client, user_agent, outcome)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (at, share_id, kind, clip(client, 64), clip(user_agent), outcome),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def finish(conn: sqlite3.Connection, log_id: int, bytes_sent: int, outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    conn.execute(
        "UPDATE access_log SET bytes_sent = ?, outcome = ? WHERE id = ?", (int(bytes_sent), outcome, log_id)
    )


def read(conn: sqlite3.Connection, share_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """Uses of one link, newest first."""
    rows = conn.execute(
        """SELECT id, at, kind, client, user_agent, outcome, bytes_sent, repeats FROM access_log
           WHERE share_id = ? ORDER BY id DESC LIMIT ? OFFSET ?""",
        (share_id, limit, offset),
    ).fetchall()
    return [{**dict(r), "at": iso(r["at"])} for r in rows]
