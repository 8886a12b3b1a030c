"""One series as a zip built while it is sent (zipstream-ng), and the limit on how many are sent at once.

The zip:
- Entries are STORED (DICOM pixel data rarely compresses, and storing keeps the size known up front), with
  ZIP64 records wherever a size or offset passes 4 GiB. The exact length is known before the first byte
  (`SeriesZip.size`, the Content-Length), no temporary file is written, and memory does not grow with the
  series: files are read in `chunk`-sized pieces as the zip goes out.
- Names inside the zip are made here, never taken from the archive's paths: one folder
  `<SeriesNumber>_<Modality>_<SeriesDescription>` (ASCII letters, digits, `_` and `-` only) holding
  `IM00001.dcm`, `IM00002.dcm` ... in instance order, so they are unique, relative and free of `..`.
- `MANIFEST.txt` comes first: every file of the series with its name in the zip, size and SOPInstanceUID,
  and the files that went missing (or became unreadable) since indexing marked as such, so nothing is
  dropped silently. Sizes are taken by opening each file just before streaming starts.
- A file that changes size while it is being sent stops the stream with `FileChanged` rather than
  producing a zip whose length or contents do not match what was announced.

Files are opened with the reader `sources.reader_for` gives for their path (local, UNC or smb://), so a
share of a series on the NAS is read straight from the NAS.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from zipstream import ZipStream

from pacsindex.errors import FileChanged, NotFound, ShareBusy, SourceError
from pacsindex.sources.files import LocalReader, Reader
from pacsindex.sources.readers import CHUNK, ReaderFor, Readers, coalesce

log = logging.getLogger(__name__)

PROBE_BATCH = 64  # files whose sizes an SMB reader fetches in one go
MANIFEST = "MANIFEST.txt"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")



@dataclass(frozen=True, slots=True)
class Member:
    """One file of the series: where it is in the zip and where it lives (never shown to a recipient)."""

    n: int  # 1-based position in instance order
    name: str  # path inside the zip
    path: str
    size: int  # bytes the zip holds: the size found just now (the indexed size when missing)
    indexed_size: int
    SOPInstanceUID: str | None
    InstanceNumber: int | None
    missing: str | None = None  # why the file is not in the zip

    @property
    def changed(self) -> bool:
        return self.missing is None and self.size != self.indexed_size


def safe_part(text: object, fallback: str, limit: int = 48) -> str:
    """A piece of a name that is safe as one path component on any system: ASCII letters, digits, `_` and
    `-` only (so no separators, no dots, no `..`), at most `limit` characters, never empty."""
    clean = _UNSAFE.sub("_", str(text) if text is not None else "").strip("_-")[:limit].strip("_-")
    return clean or fallback


def folder_name(series: Mapping[str, Any]) -> str:
    number = series.get("SeriesNumber")
    return "_".join(
        (
            safe_part(number if number is not None else "0", "0", 12),
            safe_part(series.get("Modality"), "OT", 16),
            safe_part(series.get("SeriesDescription"), "series"),
        )
    )


def zip_filename(series: Mapping[str, Any]) -> str:
    """The download's file name: modality, study date and series, nothing that names the patient."""
    return f"{safe_part(series.get('StudyDate'), 'nodate', 8)}_{folder_name(series)}.zip"


def member_names(count: int) -> list[str]:
    width = max(5, len(str(count)))
    return [f"IM{n:0{width}d}.dcm" for n in range(1, count + 1)]


def _why(exc: BaseException) -> str:
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


def _probe(readers: Readers, paths: list[str]) -> dict[str, int | str]:
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
                    found.update((p, _why(exc)) for p in group)
                    continue

                def size_of(path: str, opener: Callable[[str], IO[bytes]] = opener) -> int:
                    with opener(path) as fh:
                        return fh.seek(0, io.SEEK_END)

            for path in group:
                try:
                    found[path] = size_of(path)
                except (OSError, SourceError) as exc:
                    found[path] = _why(exc)
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
        raise FileChanged(f"{name} could not be read while it was being sent: {_why(exc)}") from exc


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
    size = _probe(readers, [path])[path]
    if isinstance(size, str):
        raise NotFound(f"{name} is {size}")
    return size, exact_chunks(readers(path), path, name, size, chunk)


_crc_checked = False


def use_fast_crc() -> bool:
    """Let zipstream-ng compute CRC-32 with zlib-ng's crc32 when it is installed; True when it does.

    zipstream-ng checksums every entry with the crc32 it takes from zipfile (zlib's: 1.5-3 GB/s on one
    core), and that, not the socket, caps a zip stream (bench/bench_share.py). zlib-ng's crc32 is the same
    function (same polynomial, same `crc32(data, value)`) using the CPU's carry-less multiply, about 13 GB/s.
    Swapped in once, on first use, and only if zipstream still holds zlib's own crc32."""
    global _crc_checked
    import zlib

    import zipstream.ng as ng

    if not _crc_checked:
        _crc_checked = True
        try:
            from zlib_ng import zlib_ng
        except ImportError:
            return False
        sample = bytes(range(256)) * 17
        same = all(zlib_ng.crc32(sample, v) == zlib.crc32(sample, v) for v in (0, 1, 0xFFFFFFFF))
        if getattr(ng, "crc32", None) is zlib.crc32 and same:
            setattr(ng, "crc32", zlib_ng.crc32)  # noqa: B010  (zipstream's own global, on purpose)
    return getattr(ng, "crc32", None) is not zlib.crc32


class SeriesZip:
    """The zip of one series, planned (every file's size known) but not yet read. Iterate it once to get
    the bytes; `size` is exactly how many there will be."""

    def __init__(
        self,
        series: Mapping[str, Any],
        files: Iterable[Mapping[str, Any]],
        *,
        reader_for: ReaderFor | None = None,
        settings: Any = None,
        chunk: int = CHUNK,
        generated_at: datetime | None = None,
    ) -> None:
        self.series = dict(series)
        self.chunk = chunk
        self._readers = Readers(reader_for, settings)
        rows = list(files)
        names = member_names(len(rows))
        self.folder = folder_name(series)
        self.filename = zip_filename(series)
        sizes = _probe(self._readers, [str(r["path"]) for r in rows])
        members = []
        for n, (row, name) in enumerate(zip(rows, names, strict=True), start=1):
            now = sizes[str(row["path"])]
            members.append(
                Member(
                    n=n,
                    name=f"{self.folder}/{name}",
                    path=str(row["path"]),
                    size=now if isinstance(now, int) else int(row.get("size") or 0),
                    indexed_size=int(row.get("size") or 0),
                    SOPInstanceUID=row.get("SOPInstanceUID"),
                    InstanceNumber=row.get("InstanceNumber"),
                    missing=None if isinstance(now, int) else now,
                )
            )
        self.members = members
        self.manifest = self._manifest(generated_at or datetime.now(timezone.utc))
        use_fast_crc()
        self._zip = ZipStream(sized=True)
        self._zip.add(self.manifest, MANIFEST)
        for m in self.members:
            if m.missing is None:
                self._zip.add(
                    exact_chunks(self._readers(m.path), m.path, m.name, m.size, chunk), m.name, size=m.size
                )
        self.size = len(self._zip)

    @property
    def included(self) -> list[Member]:
        return [m for m in self.members if m.missing is None]

    @property
    def missing(self) -> list[Member]:
        return [m for m in self.members if m.missing is not None]

    def __iter__(self) -> Iterator[bytes]:
        return coalesce(iter(self._zip), self.chunk)

    def _manifest(self, generated_at: datetime) -> bytes:
        s = self.series
        missing = self.missing
        lines = [
            "pacsindex: one series, shared as a zip",
            f"Modality: {s.get('Modality') or ''}",
            f"Study date: {s.get('StudyDate') or ''}",
            f"Series: {s.get('SeriesNumber') if s.get('SeriesNumber') is not None else ''} "
            f"{s.get('SeriesDescription') or ''}".rstrip(),
            f"SeriesInstanceUID: {s.get('SeriesInstanceUID') or ''}",
            f"Made: {generated_at.astimezone(timezone.utc).isoformat(timespec='seconds')}",
            f"Files: {len(self.members)} in the index, {len(self.members) - len(missing)} in this zip, "
            f"{len(missing)} missing",
            "",
            "name\tbytes\tSOPInstanceUID\tInstanceNumber\tstatus",
        ]
        for m in self.members:
            status = m.missing or (
                f"ok (changed since indexing: was {m.indexed_size} bytes)" if m.changed else "ok"
            )
            instance = "" if m.InstanceNumber is None else str(m.InstanceNumber)
            lines.append(f"{m.name}\t{m.size}\t{m.SOPInstanceUID or ''}\t{instance}\t{status}")
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


@dataclass
class Slot:
    """A held place among the streams allowed at once; `release()` (or leaving the `with`) frees it."""

    limiter: StreamLimiter
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limiter._release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StreamLimiter:
    """At most `limit` share streams at once. `acquire()` never waits, so async code may call it: past the
    limit it raises ShareBusy (the web layer answers 429 with Retry-After)."""

    def __init__(self, limit: int = 4, retry_after: int = 10) -> None:
        if limit < 1:
            raise ValueError("the stream limit must be at least 1")
        self.limit = limit
        self.retry_after = retry_after
        self._active = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        return self._active

    def acquire(self) -> Slot:
        with self._lock:
            if self._active >= self.limit:
                raise ShareBusy(
                    f"{self.limit} downloads are already running: try again in a moment",
                    retry_after=self.retry_after,
                )
            self._active += 1
        return Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._active -= 1
