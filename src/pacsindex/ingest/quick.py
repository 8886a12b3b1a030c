"""The rule of a quick re-scan: which folders a walk may keep unlisted, asked by the listing threads.

On a NAS a re-scan's cost is its folder listings, one round trip each. A folder's modification time changes
when an entry is added to it or removed from it, and its parent's listing shows that time; so a folder
whose time has not moved holds the same entries as when it was indexed. A quick pass keeps a folder
unlisted when the index holds it with the same time, no file under it failed last time (those are read
again), and:

- it holds no folders (a series folder): it holds the same files; or
- it is one patient's folder: everything under it is of one patient, at most two levels of folders deep
  (studies and their series), and none of those folders changed within `recent_s` (48 hours). It is kept with
  the folders below it.

So the folders above the patients (the root, years, months, a letter's folders) are always listed: a study
added anywhere, even to a patient's folder from years ago, changes that folder's time in a listing and is
found by the next quick pass; a patient whose folders changed in the last two days (a modality still
sending, a late series) is listed through. What only the full pass (`--full`, nightly in `pacsindex serve`)
finds: files rewritten in place, and a series or file added to or removed from a patient's folders that had
been quiet for `recent_s`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable

from pacsindex.index import folders, store
from pacsindex.sources.files import SkipFn

__all__ = ["RECENT_S", "quick_rule"]

RECENT_S = 48 * 3600.0  # a patient's folders that changed within this are listed on every quick pass


def quick_rule(
    db_path: str | os.PathLike[str], recent_s: float = RECENT_S, now: Callable[[], float] = time.time
) -> tuple[SkipFn | None, Callable[[], None]]:
    """A quick pass's rule, asked by the listing threads with a folder's path and the modification time its
    parent's listing shows. Each listing thread reads through a connection of its own; the second value closes
    them. No rule (None) when no folder has a stored time yet: a first index lists every folder."""
    local = threading.local()
    opened: list[sqlite3.Connection] = []
    lock = threading.Lock()
    since_ns = int((now() - recent_s) * 1e9)
    with store.reading(db_path) as conn:
        failed = folders.ErrorFolders(conn)
        if not folders.any_kept_state(conn):
            return None, lambda: None  # a first index: nothing to compare with, every folder is listed

    def skip(path: str, mtime_ns: int) -> bool:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = store.connect(db_path, readonly=True)
            with lock:
                opened.append(conn)
        state = folders.folder_state(conn, path)
        if state is None or state.mtime_ns != mtime_ns or failed.under(path, state.sep):
            return False
        if not state.has_subdirs:
            return True
        return (
            not folders.subtree_recent(conn, path, state.sep, since_ns)
            and folders.subtree_height_at_most_2(conn, path, state.sep)
            and folders.subtree_patients(conn, path, state.sep) == 1
        )

    def close() -> None:
        with lock:
            for conn in opened:
                conn.close()
            opened.clear()

    return skip, close
