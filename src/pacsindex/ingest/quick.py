"""The rule of a quick re-scan: which folders a walk may keep unlisted, asked by the listing threads.

A folder's modification time changes when a file is added to it or removed from it, and series folders are
leaves; so a folder the index holds with the same time, no subfolders and no file that failed last time (those
are read again) holds the same files as when it was indexed. A full pass (`--full`) asks nothing and lists
every folder, to catch files rewritten in place.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable

from pacsindex.index import store
from pacsindex.sources.files import SkipFn

__all__ = ["quick_rule"]


def quick_rule(db_path: str | os.PathLike[str]) -> tuple[SkipFn, Callable[[], None]]:
    """A quick pass's rule, asked by the listing threads: keep a folder unlisted when the index holds it
    with the same modification time, without subfolders and without files that failed (those are read
    again). Each listing thread reads through a connection of its own; the second value closes them."""
    local = threading.local()
    opened: list[sqlite3.Connection] = []
    lock = threading.Lock()

    def skip(path: str, mtime_ns: int) -> bool:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = store.connect(db_path, readonly=True)
            with lock:
                opened.append(conn)
        row = conn.execute(
            "SELECT d.mtime_ns = ? AND NOT d.has_subdirs"
            " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.dir_id = d.id AND f.status = 'error')"
            " FROM dirs d WHERE d.path = ?",
            (mtime_ns, path),
        ).fetchone()
        return bool(row and row[0])

    def close() -> None:
        with lock:
            for conn in opened:
                conn.close()
            opened.clear()

    return skip, close
