"""Reading the shared files from where they live: each file's size now (or why it cannot be read), its
bytes exactly as measured (or FileChanged), one file for a recipient's single-file download, and the
names files get inside a share. What the zip holds is `bundle.py`'s; its bytes `zipwriter.py`'s.

- A file that changes size while it is being sent stops the stream with `FileChanged` rather than
  producing a zip whose length or contents do not match what was announced.
- Files are opened with the reader `sources.reader_for` gives for their path (local, UNC or smb://), so a
  share of a series on the NAS is read straight from the NAS. An SMB reader fetches sizes in batches.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator
from typing import IO, Any

from pacsindex.errors import FileChanged, NotFound, SourceError
from pacsindex.sources.files import LocalReader, Reader
from pacsindex.sources.readers import CHUNK, ReaderFor, Readers

__all__ = ["CHUNK", "ReaderFor", "exact_chunks", "member_names", "probe", "safe_part", "stream_file", "why"]

log = logging.getLogger(__name__)

PROBE_BATCH = 64  # files whose sizes an SMB reader fetches in one go
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_part(text: object, fallback: str, limit: int = 48) -> str:
    """A piece of a name that is safe as one path component on any system: ASCII letters, digits, `_` and
    `-` only (so no separators, no dots, no `..`), at most `limit` characters, never empty."""
    clean = _UNSAFE.sub("_", str(text) if text is not None else "").strip("_-")[:limit].strip("_-")
    return clean or fallback


def member_names(count: int) -> list[str]:
    width = max(5, len(str(count)))
    return [f"IM{n:0{width}d}.dcm" for n in range(1, count + 1)]


def why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "missing: not found (moved or deleted since indexing)"
    if isinstance(exc, PermissionError):
        return "missing: permission denied"
    if isinstance(exc, OSError):
        return f"missing: cannot be read ({exc.strerror or type(exc).__name__})"
    return f"missing: cannot be read ({exc})"


def _local_size(path: str) -> int:
    """A local file's size, checking it can be opened for reading (cheaper than a Python file object)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "not a regular file")
    return st.st_size


def probe(readers: Readers, paths: list[str]) -> dict[str, int | str]:
    """Each path's size now, or why it cannot be read. An SMB reader fetches a batch in one go."""
    found: dict[str, int | str] = {}
    for start in range(0, len(paths), PROBE_BATCH):
        groups: dict[int, tuple[Reader, list[str]]] = {}
        for path in paths[start : start + PROBE_BATCH]:
            reader = readers(path)
            groups.setdefault(id(reader), (reader, []))[1].append(path)
        for reader, group in groups.values():
            size_of: Callable[[str], int]
            if type(reader) is LocalReader:
                size_of = _local_size
            else:
                prefetch = getattr(reader, "prefetch", None)
                try:
                    opener = prefetch(group) if prefetch is not None else reader.open
                except (OSError, SourceError) as exc:
                    found.update((p, why(exc)) for p in group)
                    continue

                def size_of(path: str, opener: Callable[[str], IO[bytes]] = opener) -> int:
                    with opener(path) as fh:
                        return fh.seek(0, io.SEEK_END)

            for path in group:
                try:
                    found[path] = size_of(path)
                except (OSError, SourceError) as exc:
                    found[path] = why(exc)
    return found


def exact_chunks(reader: Reader, path: str, name: str, size: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes, exactly `size` of them in pieces of at most `chunk`, or FileChanged. Nothing is
    opened until the first piece is asked for. Messages name the file by `name` only: archive paths hold
    patient names."""
    try:
        with reader.open(path) as fh:
            left = size
            while left:
                # A last piece of up to chunk / 8 rides with the one before it: no tiny reads and writes.
                data = fh.read(left if left <= chunk + chunk // 8 else chunk)
                if not data:
                    raise FileChanged(f"{name} got shorter while it was being sent")
                left -= len(data)
                yield data
            if fh.read(1):
                raise FileChanged(f"{name} grew while it was being sent")
    except OSError as exc:
        raise FileChanged(f"{name} could not be read while it was being sent: {why(exc)}") from exc


def stream_file(
    path: str,
    name: str,
    *,
    reader_for: ReaderFor | None = None,
    settings: Any = None,
    chunk: int = CHUNK,
) -> tuple[int, Iterator[bytes]]:
    """One file as it is now: its size, and its bytes (exactly that many, or FileChanged). NotFound when it
    cannot be opened."""
    readers = Readers(reader_for, settings)
    size = probe(readers, [path])[path]
    if isinstance(size, str):
        raise NotFound(f"{name} is {size}")
    return size, exact_chunks(readers(path), path, name, size, chunk)
