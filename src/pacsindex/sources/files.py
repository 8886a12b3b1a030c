"""Where files live: a local tree (also a mapped drive or UNC path on Windows) or a file list.

A source streams `DirListing`s (one folder's files with size and mtime) and `WalkError`s (a folder or a
listed file that could not be read). It never holds the whole listing in memory, never follows symlinks or
junctions, and opens nothing for writing. `reader()` gives a small picklable object whose `open(path)` the
header-reading worker processes use, so an SMB source can sit beside these with its own reader.
"""

from __future__ import annotations

import codecs
import importlib
import logging
import ntpath
import os
import posixpath
import queue
import re
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import IO, Any, NamedTuple, Protocol, cast

from pacsindex.dicom.headers import open_local
from pacsindex.errors import ConfigError, PermissionDenied, SourceError, SourceUnreachable

log = logging.getLogger(__name__)

_REPARSE_POINT = getattr(stat, "FILE_ATTRIBUTE_REPARSE_POINT", 0x400)
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:|\\\\)")


class Entry(NamedTuple):
    """One file in a listing (a tuple: there is one per file, so it must be cheap to make)."""

    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class DirListing:
    """Files found in one folder. `complete` means every file of the folder is here, so files the index
    has there but this listing lacks are gone; a file list names only some files and is never complete.
    `mtime_ns` is the folder's modification time as its parent's listing showed it (None for a root or a
    file list) and `has_subdirs` whether it holds folders: what a quick pass needs to skip it next time."""

    path: str
    sep: str
    entries: list[Entry]
    complete: bool
    mtime_ns: int | None = None
    has_subdirs: bool = False


class Folder(NamedTuple):
    """A subfolder as its parent's listing shows it."""

    path: str
    mtime_ns: int | None


@dataclass(frozen=True, slots=True)
class DirKept:
    """A folder a quick pass did not list, nor the folders below it: its parent's listing shows the same
    modification time as when it was indexed, and the pass's rule (`pacsindex.ingest.quick`) says what is
    under it stands."""

    path: str


# A quick pass's rule: (folder, its modification time in the parent's listing) -> True to keep it unlisted.
SkipFn = Callable[[str, int], bool]


@dataclass(frozen=True, slots=True)
class WalkError:
    path: str
    reason: str
    is_dir: bool


class Reader(Protocol):
    def open(self, path: str) -> IO[bytes]: ...


class Source(Protocol):
    label: str

    def check(self) -> None: ...

    def walk(
        self, cancel: threading.Event, skip: SkipFn | None = None
    ) -> Iterator[DirListing | DirKept | WalkError]:
        """Every folder's files. A source that lists folders asks `skip` before listing each subfolder."""
        ...

    def reader(self) -> Reader: ...

    def complete_roots(self) -> list[tuple[str, str]]:
        """Folders this source lists completely; files under them that were not seen are gone."""
        ...


class LocalReader:
    """Opens local, mapped-drive and UNC paths read-only."""

    def open(self, path: str) -> IO[bytes]:
        return open_local(path)


def join_sep(path: str) -> str:
    """The separator to put between folder `path` and a name ('' when the folder already ends in one)."""
    if path.endswith(("/", "\\")):
        return ""
    return "\\" if _WINDOWS_PATH.match(path) or ("\\" in path and "/" not in path) else os.sep


def split_path(path: str) -> tuple[str, str]:
    """(folder, name) of a path written on Windows or POSIX, whatever this machine is."""
    if _WINDOWS_PATH.match(path) or "\\" in path:
        folder, name = ntpath.split(path)
    else:
        folder, name = posixpath.split(path)
    return folder, name


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "not found (removed while indexing?)"
    return exc.strerror or str(exc)


class LocalTree:
    """A folder tree on a local disk, a mapped drive (Z:\\...) or a UNC path (\\\\nas\\share\\...).

    Folders are listed by a few threads at once (on a NAS each listing is a network round trip); listings
    flow through a bounded queue, so memory does not grow with the tree."""

    def __init__(self, root: str, listers: int | None = None) -> None:
        self.root = os.path.abspath(root)
        self.label = self.root
        # On a network share each listing waits for a round trip, so several threads help. On a local disk
        # listing is CPU work, and threads would only fight the main thread for the GIL.
        if listers is None:
            listers = 8 if is_network_path(self.root) else 1
        self.listers = max(1, listers)

    def check(self) -> None:
        try:
            st = os.stat(self.root)
        except FileNotFoundError as exc:
            raise SourceError(f"root not found: {self.root}") from exc
        except PermissionError as exc:
            raise PermissionDenied(f"root not readable (permission denied): {self.root}") from exc
        except OSError as exc:
            raise SourceUnreachable(f"root not reachable: {self.root}: {exc.strerror or exc}") from exc
        if stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(self.root):
                    pass
            except PermissionError as exc:
                raise PermissionDenied(f"root not readable (permission denied): {self.root}") from exc
            except OSError as exc:
                raise SourceUnreachable(f"root not readable: {self.root}: {exc.strerror or exc}") from exc

    def reader(self) -> Reader:
        return LocalReader()

    def complete_roots(self) -> list[tuple[str, str]]:
        return [(self.root, join_sep(self.root))] if os.path.isdir(self.root) else []

    def _list(self, path: str) -> tuple[DirListing | WalkError, list[Folder]]:
        files: list[Entry] = []
        subdirs: list[Folder] = []
        try:
            with os.scandir(path) as it:
                for entry in it:
                    try:
                        # follow_symlinks=False: a symlink is neither a file nor a folder here, so links
                        # (and loops through them) are never followed.
                        if entry.is_file(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            files.append(Entry(entry.name, st.st_size, st.st_mtime_ns))
                        elif entry.is_dir(follow_symlinks=False):
                            st = entry.stat(follow_symlinks=False)
                            if getattr(st, "st_file_attributes", 0) & _REPARSE_POINT:
                                continue  # a Windows junction: may loop back up the tree
                            subdirs.append(Folder(entry.path, st.st_mtime_ns))
                    except OSError as exc:
                        log.debug("skipping %s: %s", entry.path, exc)
        except OSError as exc:
            return WalkError(path, f"cannot list folder: {_os_reason(exc)}", True), []
        # Recently changed folders first (a new study's folder, today's date folder), so a long pass
        # makes new studies searchable early; the walk takes them in this order.
        subdirs.sort(key=lambda f: (-(f.mtime_ns or 0), f.path))
        return DirListing(path, join_sep(path), files, True), subdirs

    def walk(
        self, cancel: threading.Event, skip: SkipFn | None = None
    ) -> Iterator[DirListing | DirKept | WalkError]:
        if not os.path.isdir(self.root):
            folder, name = os.path.split(self.root)
            try:
                st = os.stat(self.root)
            except OSError as exc:
                yield WalkError(self.root, _os_reason(exc), False)
                return
            yield DirListing(folder, join_sep(folder), [Entry(name, st.st_size, st.st_mtime_ns)], False)
            return
        if self.listers == 1:
            yield from _serial_walk(self.root, self._list, cancel, skip)
        else:
            yield from _parallel_walk(self.root, self._list, self.listers, cancel, skip)


_DONE = object()
_NETWORK_FS = {
    "cifs",
    "smb3",
    "smbfs",
    "nfs",
    "nfs4",
    "fuse.sshfs",
    "9p",
    "afs",
    "ceph",
    "glusterfs",
    "davfs",
}


def is_network_path(path: str) -> bool:
    """True for a UNC path, a mapped network drive (Windows) or a folder on a network mount (Linux/macOS)."""
    if path.startswith(("\\\\", "//")):
        return True
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import ctypes

        drive = os.path.splitdrive(path)[0]
        if drive:
            return bool(ctypes.windll.kernel32.GetDriveTypeW(drive + "\\") == 4)  # DRIVE_REMOTE
        return False
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) >= 3]
    except OSError:
        return False
    best, fstype = "", ""
    for mount_point, kind in mounts:
        mount_point = mount_point.replace("\\040", " ")
        prefix = mount_point.rstrip("/") + "/"
        if (path == mount_point or path.startswith(prefix)) and len(mount_point) > len(best):
            best, fstype = mount_point, kind
    return fstype in _NETWORK_FS


def _visit(
    folder: Folder, list_dir: ListFn, skip: SkipFn | None
) -> tuple[DirListing | DirKept | WalkError, list[Folder]]:
    """One folder of a walk: kept unlisted when `skip` says so, else listed, with what a later quick pass
    needs to know about it."""
    if skip is not None and folder.mtime_ns is not None and skip(folder.path, folder.mtime_ns):
        return DirKept(folder.path), []
    item, subdirs = list_dir(folder.path)
    if isinstance(item, DirListing):
        item = replace(item, mtime_ns=folder.mtime_ns, has_subdirs=bool(subdirs))
    return item, subdirs


def _serial_walk(
    root: str, list_dir: ListFn, cancel: threading.Event, skip: SkipFn | None = None
) -> Iterator[DirListing | DirKept | WalkError]:
    """List folders depth-first in the calling thread."""
    pending = [Folder(root, None)]
    while pending and not cancel.is_set():
        item, subdirs = _visit(pending.pop(), list_dir, skip)
        pending.extend(reversed(subdirs))
        yield item


QUICK_LISTERS = 2


def _parallel_walk(
    root: str,
    list_dir: "ListFn",
    listers: int,
    cancel: threading.Event,
    skip: SkipFn | None = None,
) -> Iterator[DirListing | DirKept | WalkError]:
    """List folders with `listers` threads; depth-first so the frontier stays small; bounded output. A quick
    pass (`skip`) uses at most QUICK_LISTERS: it lists few folders, and asks the index about each subfolder
    it finds, so more threads only wait for each other's turn at the GIL (a quick pass over SMB at 1 ms each
    way, 100,000 files, 3 passes each: 1.3 s with 2 threads, 1.7 s with 1, 1.6 s with 4, 2.0 s with 16)."""
    if skip is not None:
        listers = min(listers, QUICK_LISTERS)
    out: queue.Queue[object] = queue.Queue(maxsize=64)
    pending: list[Folder] = [Folder(root, None)]
    cond = threading.Condition()
    state = {"active": 0, "stop": False}

    def worker() -> None:
        while True:
            with cond:
                while not pending and state["active"] and not state["stop"]:
                    cond.wait()
                if state["stop"] or (not pending and not state["active"]):
                    cond.notify_all()
                    return
                path = pending.pop()
                state["active"] += 1
            try:
                item, subdirs = _visit(path, list_dir, skip)
            except Exception as exc:  # a lister must never die silently and hang the walk
                item, subdirs = WalkError(path.path, f"cannot list folder: {exc}", True), []
            while not state["stop"]:
                try:
                    out.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            with cond:
                pending.extend(reversed(subdirs))
                state["active"] -= 1
                cond.notify_all()

    threads = [threading.Thread(target=worker, name=f"lister-{i}", daemon=True) for i in range(listers)]
    for t in threads:
        t.start()

    def closer() -> None:
        for t in threads:
            t.join()
        out.put(_DONE)

    threading.Thread(target=closer, name="lister-join", daemon=True).start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if cancel.is_set():
                return
            yield item  # type: ignore[misc]
    finally:
        with cond:
            state["stop"] = True
            cond.notify_all()
        # Unblock listers waiting on a full queue so they can see the stop flag.
        while any(t.is_alive() for t in threads):
            try:
                out.get(timeout=0.05)
            except queue.Empty:
                pass


class ListFn(Protocol):
    def __call__(self, path: str) -> tuple[DirListing | WalkError, list[Folder]]: ...


def read_list_lines(list_path: str) -> Iterator[str]:
    """Paths from a file list as PowerShell (`Get-ChildItem ... | % FullName > list.txt`, UTF-16 LE with
    BOM) or robocopy (`/L /S /FP /NJH /NJS /NDL /NC /NS`, leading tabs, ANSI) write it; UTF-8 with or
    without BOM; CRLF or LF. Streams: the list is never loaded whole."""
    with open(list_path, "rb") as raw:
        head = raw.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        with open(list_path, encoding="utf-16", newline=None) as text:
            for line in text:
                path = _clean_line(line)
                if path:
                    yield path
        return
    with open(list_path, "rb") as raw:
        first = True
        for bline in raw:
            if first and bline.startswith(codecs.BOM_UTF8):
                bline = bline[len(codecs.BOM_UTF8) :]
            first = False
            try:
                line = bline.decode("utf-8")
            except UnicodeDecodeError:
                line = bline.decode("cp1252", errors="replace")  # robocopy's ANSI output
            path = _clean_line(line)
            if path:
                yield path


def _clean_line(line: str) -> str | None:
    path = line.strip(" \t\r\n\ufeff\x00")
    if not path or path.endswith(("\\", "/")):
        return None  # blank, or a folder line
    if not ("\\" in path or "/" in path):
        return None  # robocopy/PowerShell chatter, not a path
    return path


class FileList:
    """The files named in a list written by PowerShell or robocopy (or by hand). Consecutive paths in the
    same folder are grouped, and stat'ed a few at a time in threads (each stat is a round trip on a NAS)."""

    def __init__(self, list_path: str, stat_threads: int = 8, chunk: int = 256) -> None:
        self.list_path = os.path.abspath(list_path)
        self.label = f"list:{self.list_path}"
        self.stat_threads = stat_threads
        self.chunk = chunk

    def check(self) -> None:
        try:
            with open(self.list_path, "rb") as fh:
                fh.read(1)
        except FileNotFoundError as exc:
            raise SourceError(f"file list not found: {self.list_path}") from exc
        except OSError as exc:
            raise SourceError(f"cannot read file list {self.list_path}: {exc.strerror or exc}") from exc

    def reader(self) -> Reader:
        return LocalReader()

    def complete_roots(self) -> list[tuple[str, str]]:
        return []

    def walk(
        self, cancel: threading.Event, skip: SkipFn | None = None
    ) -> Iterator[DirListing | DirKept | WalkError]:
        # A list names files, not folders: there is nothing to skip, and nothing is ever DirKept.
        with ThreadPoolExecutor(self.stat_threads, thread_name_prefix="stat") as pool:
            group: list[str] = []
            folder: str | None = None
            for path in read_list_lines(self.list_path):
                if cancel.is_set():
                    return
                parent, _ = split_path(path)
                if group and (parent != folder or len(group) >= self.chunk):
                    yield from self._stat_group(pool, folder or "", group)
                    group = []
                folder = parent
                group.append(path)
            if group and not cancel.is_set():
                yield from self._stat_group(pool, folder or "", group)

    def _stat_group(
        self, pool: ThreadPoolExecutor, folder: str, paths: list[str]
    ) -> Iterator[DirListing | WalkError]:
        entries: list[Entry] = []
        for path, result in zip(paths, pool.map(_stat_file, paths), strict=True):
            if isinstance(result, str):
                yield WalkError(path, result, False)
            else:
                entries.append(Entry(split_path(path)[1], result.st_size, result.st_mtime_ns))
        if entries:
            yield DirListing(folder, join_sep(folder), entries, False)


def _stat_file(path: str) -> os.stat_result | str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "listed file not found (moved or deleted since the list was written?)"
    except OSError as exc:
        return f"cannot read listed file: {_os_reason(exc)}"
    if not stat.S_ISREG(st.st_mode):
        return "listed path is not a regular file"
    return st


def is_smb_url(path: str) -> bool:
    return scheme_of(path) == "smb"


# The kinds of address a root or a stored path may have besides a plain path (a folder, a mapped drive, a
# UNC path): scheme → the module whose `from_url(url, settings)` classes read it. Imported on first use,
# so smbprotocol is loaded only by a process that meets an smb:// address.
SCHEMES: dict[str, tuple[str, str, str]] = {
    "smb": ("pacsindex.sources.smb.reader", "SmbTree", "SmbReader"),
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")  # two letters at least: C:\ is a drive


def scheme_of(path: str) -> str | None:
    """`smb` for smb://host/share/path; None for a plain path."""
    found = _SCHEME.match(path)
    return found.group(1).lower() if found else None


def _registered(path: str, which: int) -> Any:
    scheme = scheme_of(path)
    if scheme is None:
        return None
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(f"{scheme}:// addresses cannot be indexed: give a folder, a UNC path or {known}")
    entry = SCHEMES[scheme]
    return getattr(importlib.import_module(entry[0]), entry[which])


def source_for(root: str, settings: Any = None) -> Source:
    """The source for a root as a user writes it: a folder, a mapped drive, a UNC path, or an address of a
    registered scheme (smb://host/share/path)."""
    kind = _registered(root, 1)
    return LocalTree(root) if kind is None else cast(Source, kind.from_url(root, settings))


def reader_for(path: str, settings: Any = None) -> Reader:
    """A reader that can open `path` (as stored in the index) read-only."""
    kind = _registered(path, 2)
    return LocalReader() if kind is None else cast(Reader, kind.from_url(path, settings))
