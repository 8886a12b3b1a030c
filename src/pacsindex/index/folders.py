"""What the index knows about a folder and the folders below it, for a quick re-scan's rule
(`pacsindex.ingest.quick`): its modification time when it was last listed, whether it holds folders, and of
its whole subtree whether a file failed, whether a folder changed lately, how deep its folders go and how
many patients it holds.

Each query reads the subtree by a range of `dirs.path` (its unique index), so it costs the folders and
files under that one folder, never the whole index.
"""

from __future__ import annotations

import bisect
import sqlite3
from typing import NamedTuple

from pacsindex.index.writer import subtree_range

__all__ = [
    "ErrorFolders",
    "FolderState",
    "folder_state",
    "subtree_height_at_most_2",
    "subtree_patients",
    "subtree_recent",
]


class FolderState(NamedTuple):
    mtime_ns: int | None  # as the folder's parent listed it when every file of it was indexed; None: never
    has_subdirs: bool
    sep: str


def folder_state(conn: sqlite3.Connection, path: str) -> FolderState | None:
    row = conn.execute("SELECT mtime_ns, has_subdirs, sep FROM dirs WHERE path = ?", (path,)).fetchone()
    return None if row is None else FolderState(row[0], bool(row[1]), row[2])


def any_kept_state(conn: sqlite3.Connection) -> bool:
    """Whether any folder has a stored modification time: without one no folder can be kept unlisted (a
    first index)."""
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM dirs WHERE mtime_ns IS NOT NULL)").fetchone()[0])


def _below(path: str, sep: str) -> tuple[str, str, str]:
    lo, hi = subtree_range(path, sep)
    return path, lo, hi


_SUBTREE = "(d.path = ? OR (d.path >= ? AND d.path < ?))"


class ErrorFolders:
    """The folders holding a file that failed last time (read again on their next listing), looked up by
    subtree. Read once when a pass starts, through the index of failed files: few folders, even in a large
    archive."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute(
            "SELECT DISTINCT d.path FROM files f JOIN dirs d ON d.id = f.dir_id WHERE f.status = 'error'"
        )
        self._paths = sorted(r[0] for r in rows)

    def __len__(self) -> int:
        return len(self._paths)

    def under(self, path: str, sep: str) -> bool:
        """A folder with a failed file is `path` or below it."""
        lo, hi = subtree_range(path, sep)
        i = bisect.bisect_left(self._paths, path)
        if i < len(self._paths) and self._paths[i] == path:
            return True
        j = bisect.bisect_left(self._paths, lo)
        return j < len(self._paths) and self._paths[j] < hi


def subtree_recent(conn: sqlite3.Connection, path: str, sep: str, since_ns: int) -> bool:
    """A folder in the subtree (or the folder itself) had a file added or removed at or after `since_ns`, as
    its modification time said when it was last listed (work may still be arriving there), or has no time
    stored: a run stopped before all its files were written."""
    row = conn.execute(
        f"SELECT 1 FROM dirs d WHERE {_SUBTREE} AND (d.mtime_ns >= ? OR d.mtime_ns IS NULL) LIMIT 1",
        (*_below(path, sep), since_ns),
    ).fetchone()
    return row is not None


def subtree_height_at_most_2(conn: sqlite3.Connection, path: str, sep: str) -> bool:
    """No folder two levels below `path` holds folders (as the index last saw them): `path` is at most a
    patient's folder above study and series folders, not a month's or a year's."""
    lo, hi = subtree_range(path, sep)
    row = conn.execute(
        "SELECT 1 FROM dirs WHERE path >= ? AND path < ? AND has_subdirs AND instr(substr(path, ?), ?) > 0"
        " LIMIT 1",
        (lo, hi, len(lo) + 1, sep or "/"),
    ).fetchone()
    return row is None


def subtree_patients(conn: sqlite3.Connection, path: str, sep: str, most: int = 2) -> int:
    """How many patients the DICOM files of the subtree belong to, counted up to `most` (it stops there)."""
    rows = conn.execute(
        f"SELECT DISTINCT st.patient_id FROM dirs d JOIN files f ON f.dir_id = d.id"
        f" JOIN series s ON s.id = f.series_id JOIN studies st ON st.id = s.study_id"
        f" WHERE {_SUBTREE} LIMIT ?",
        (*_below(path, sep), most),
    ).fetchall()
    return len(rows)
