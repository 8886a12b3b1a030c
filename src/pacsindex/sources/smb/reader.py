"""Direct SMB access to a NAS share: `smb://host[:port]/share/path` roots (`SmbTree`) and read-only header
reads (`SmbReader`), over the connections of `pacsindex.sources.smb.conn`.

`SmbReader.prefetch` sends a whole batch of header reads (create + read of the prefix + close, compounded),
keeping as many in flight as keeps throughput growing. A file object holds no handle on the NAS: reading past
the prefix fetches just the range asked for, in another compound. `SmbTree` lists folders with a few threads
over one connection. On an established connection a network error is retried (conn.py); after that the
folder or file is recorded as an error and the run goes on. When the NAS cannot be connected again at all,
the walk or the batch of reads raises `SourceUnreachable`: the run stops and the next run resumes.

Credentials come from the saved NAS settings when the root is on the NAS they name
(`pacsindex.sources.smb.nas`), else
from the settings (`PACSINDEX_SMB_USER` / `PACSINDEX_SMB_PASSWORD`); they never appear in labels, stored
paths, exceptions or logs. The names of conn.py are importable from here too.
"""

from __future__ import annotations

import errno
import io
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any
from urllib.parse import unquote

from pacsindex.errors import PermissionDenied, ShareNotFound, SourceError, SourceUnreachable
from pacsindex.sources.files import DirKept, DirListing, Entry, Folder, SkipFn, WalkError, _parallel_walk
from pacsindex.sources.smb import wire
from pacsindex.sources.smb.address import _loaded, _next_step, _setting  # noqa: F401  (re-exported)
from pacsindex.sources.smb.conn import (  # noqa: F401  (re-exported: pacsindex.sources.smb.reader is the public name)
    _ACCESS_DENIED,
    _DIRECTORY,
    _END_OF_FILE,
    _NO_MORE_FILES,
    _NOT_FOUND,
    _REPARSE_POINT,
    _Client,
    _client_for,
    _created,
    _dir_entries,
    _dir_msgs,
    _discard,
    _file_msgs,
    _Offline,
    _Pacer,
    _payload,
    _retrying,
    _stat_msgs,
    _status_error,
)
from pacsindex.sources.smb.conn import (
    BACKOFF_S as BACKOFF_S,
)
from pacsindex.sources.smb.conn import (
    DEFAULT_PORT as DEFAULT_PORT,
)
from pacsindex.sources.smb.conn import (
    GIVE_UP_S as GIVE_UP_S,
)
from pacsindex.sources.smb.conn import (
    MAX_WINDOW as MAX_WINDOW,
)
from pacsindex.sources.smb.conn import (
    RETRIES as RETRIES,
)
from pacsindex.sources.smb.conn import (
    DirEntry as DirEntry,
)
from pacsindex.sources.smb.conn import (
    SmbCredentials as SmbCredentials,
)
from pacsindex.sources.smb.conn import (
    SmbLocation as SmbLocation,
)
from pacsindex.sources.smb.conn import (
    close_connections as close_connections,
)
from pacsindex.sources.smb.conn import (
    connect_timeout_from as connect_timeout_from,
)
from pacsindex.sources.smb.conn import (
    url_for as url_for,
)
from pacsindex.sources.smb.nas import credentials_for

log = logging.getLogger(__name__)

PREFIX = 16384  # the header prefix read with the open: headers.read_header's first read
CHUNK = 65536  # reads past the prefix fetch at least this much
SLOW_MS = 25.0  # a round trip slower than this earns the hint to index from a mapped drive


# -- reading files ---------------------------------------------------------------------------------------


_IN_USE = {0xC0000043, 0xC0000054}  # NTSTATUS sharing violation, file lock conflict


def _head(client: _Client, share: str, replies: list[tuple[int, bytes]]) -> tuple[int, bytes] | OSError:
    """(size, data) from the replies to a create + read + close compound."""
    (cstatus, create), (rstatus, read), (lstatus, _) = replies
    if cstatus in _IN_USE:  # passes by itself: the file is read again on the next run
        return OSError(errno.EBUSY, "the file is open in another program (a modality still writing it?)")
    if cstatus:
        return _status_error(cstatus)
    size, _, _, file_id = _created(create)
    if lstatus:
        client.close_handle(share, file_id)
    if rstatus and rstatus != _END_OF_FILE:
        return _status_error(rstatus)
    return size, _payload(read, "<BxI") if not rstatus else b""


@dataclass(frozen=True)
class SmbReader:
    """Opens smb:// paths read-only. Picklable: each worker process connects once and reuses it."""

    creds: SmbCredentials = SmbCredentials()
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> SmbReader:
        loc, settings = SmbLocation.parse(url), _loaded(settings)
        return cls(credentials_for(loc, settings), connect_timeout_from(settings))

    def open(self, path: str) -> IO[bytes]:
        return self.prefetch([path])(path)

    def prefetch(self, paths: Sequence[str]) -> Callable[[str], IO[bytes]]:
        """Fetch the header prefix of every file in `paths`, many in flight at once, and return an opener that
        serves them from memory. Raises SourceUnreachable when the NAS cannot be connected at all."""
        heads: dict[str, tuple[int, bytes] | OSError] = {}
        shares: dict[SmbLocation, list[str]] = {}
        for path in paths:
            loc = SmbLocation.parse(path)
            shares.setdefault(SmbLocation(loc.host, loc.port, loc.share), []).append(path)
        for loc, group in shares.items():
            try:
                _retrying(loc, self.creds, self.timeout, _Batch(loc, group, heads))
            except _Offline as exc:
                lost = ConnectionError(errno.EIO, f"network error, {RETRIES} retries: {exc}")  # transient
                for path in group:
                    heads.setdefault(path, lost)

        def opener(path: str) -> IO[bytes]:
            head = heads.pop(path, None)
            if head is None:
                return self.open(path)
            if isinstance(head, OSError):
                raise head
            return SmbFile(self, path, *head)  # type: ignore[return-value]

        return opener

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of a file (fewer at its end), one round trip per MiB."""
        loc = SmbLocation.parse(path)
        name = loc.name_of(path)

        def op(client: _Client) -> bytes:
            out = bytearray()
            while len(out) < length:
                at, want = offset + len(out), min(length - len(out), client.conn.max_read_size, 1 << 20)
                tree = client.tree(loc.share)
                replies = client.collect(client.send(tree, _file_msgs(name, at, want)))
                got = _head(client, loc.share, replies)
                if isinstance(got, OSError):
                    raise got
                out += got[1]
                if len(got[1]) < want:
                    break
            return bytes(out)

        try:
            return bytes(_retrying(loc, self.creds, self.timeout, op))
        except (_Offline, SourceError) as exc:
            raise ConnectionError(errno.EIO, f"network error, {RETRIES} retries: {exc}") from exc


@dataclass
class _Batch:
    """Fetch the header prefixes of files on one share, keeping the pacer's window of them in flight."""

    loc: SmbLocation
    paths: list[str]
    heads: dict[str, tuple[int, bytes] | OSError]

    def __call__(self, client: _Client) -> None:
        todo = [p for p in self.paths if p not in self.heads]  # a retry fetches only what is missing
        tree, share = client.tree(self.loc.share), self.loc.share
        inflight: deque[tuple[str, list[wire.Reply]]] = deque()
        started = time.monotonic()
        for path in todo:
            inflight.append((path, client.send(tree, _file_msgs(self.loc.name_of(path), 0, PREFIX))))
            while len(inflight) >= client.pacer.window:
                done, requests = inflight.popleft()
                self.heads[done] = _head(client, share, client.collect(requests))
        while inflight:
            done, requests = inflight.popleft()
            self.heads[done] = _head(client, share, client.collect(requests))
        client.pacer.record(len(todo), time.monotonic() - started)


class SmbFile(io.RawIOBase):
    """One NAS file, read-only. Its header prefix is already here; reading past it fetches the range asked
    for (at least CHUNK bytes) in one round trip. It holds no handle on the NAS."""

    def __init__(self, reader: SmbReader, path: str, size: int, head: bytes) -> None:
        super().__init__()
        self.name, self._reader, self._size = path, reader, size
        self._pos, self._base, self._buf = 0, 0, head

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        pos = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence] + offset
        if pos < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = pos
        return pos

    def read(self, size: int | None = -1) -> bytes:
        pos = self._pos
        end = self._size if size is None or size < 0 else min(self._size, pos + size)
        if end <= pos:
            return b""
        if not self._base <= pos <= end <= self._base + len(self._buf):
            self._buf, self._base = self._reader.read_range(self.name, pos, max(end - pos, CHUNK)), pos
        data = self._buf[pos - self._base : end - self._base]
        self._pos = pos + len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# -- listing folders -------------------------------------------------------------------------------------


def _list_dir(client: _Client, share: str, name: str) -> list[DirEntry] | OSError:
    """Every entry of a folder: one round trip unless it holds more than two responses' worth (~1,200)."""
    (cstatus, create), *queries, (lstatus, _) = client.call(share, _dir_msgs(name, 2, True))
    if cstatus:
        return _status_error(cstatus)
    if lstatus:
        client.close_handle(share, _created(create)[3])
    entries: list[DirEntry] = []
    for status, body in queries:
        if status == _NO_MORE_FILES:
            return entries
        if status:
            return _status_error(status)
        entries.extend(_dir_entries(_payload(body, "<HI")))
    # Both queries came back full and the chained close ended the listing: list again, holding a handle.
    (cstatus, create), (status, body) = client.call(share, _dir_msgs(name, 1, False))
    if cstatus:
        return _status_error(cstatus)
    file_id = _created(create)[3]
    entries = []
    try:
        while status != _NO_MORE_FILES:
            if status:
                return _status_error(status)
            entries.extend(_dir_entries(_payload(body, "<HI")))
            [(status, body)] = client.call(share, _dir_msgs(name, 1, False, file_id))
    finally:
        client.close_handle(share, file_id)
    return entries


def decoded(url: str) -> str:
    """An smb:// root as file managers copy it: `%20` and other %-escapes decoded."""
    return unquote(url) if re.search(r"%[0-9A-Fa-f]{2}", url) else url


def canonical(loc: SmbLocation) -> SmbLocation:
    """One spelling per share: share names are case-insensitive, so stored paths use it lower-cased (the
    host already is); folders inside it take the NAS's own spelling (`SmbTree._resolve`)."""
    return replace(loc, share=loc.share.lower())


class SmbTree:
    """A folder tree on an SMB share, listed by a few threads over one connection. Stored paths are
    `smb://host[:port]/share/dir/name`; the label is the root's URL, without credentials."""

    def __init__(self, loc: SmbLocation, creds: SmbCredentials, timeout: float = 10.0, listers: int = 16):
        self.typed = loc  # as the user wrote it: for advice ("map the share") in their spelling
        self.loc, self.creds, self.timeout = canonical(loc), creds, timeout
        self.label = self.loc.url
        self._resolved = False
        self.listers = max(1, listers)
        self._fatal: SourceError | None = None
        self._seen: set[int] = set()
        self._seen_lock = threading.Lock()
        self._rtt: float | None = None

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> SmbTree:
        loc, settings = SmbLocation.parse(decoded(url)), _loaded(settings)
        return cls(loc, credentials_for(loc, settings), connect_timeout_from(settings))

    def _resolve(self, client: _Client) -> None:
        """The root's folders as the NAS spells them (SMB names are case-insensitive): listed once, so
        `smb://nas/archive/flaky`, `smb://nas/ARCHIVE/FLAKY` and the saved NAS's spelling index the same
        rows. A folder the NAS does not list is kept as written (the stat that follows reports it)."""
        if self._resolved or not self.loc.path:
            return
        parts: list[str] = []
        for part in self.loc.path.split("/"):
            got = _list_dir(client, self.loc.share, "\\".join(parts))
            names = [] if isinstance(got, OSError) else [e[0] for e in got]
            match = next((n for n in names if n == part), None)
            match = match or next((n for n in names if n.casefold() == part.casefold()), part)
            parts.append(match)
        self.loc = replace(self.loc, path="/".join(parts))
        self.label = self.loc.url
        self._resolved = True

    @property
    def hint(self) -> str | None:
        """Advice for the run status when the NAS answers slowly."""
        if self._rtt is None or self._rtt * 1000 < SLOW_MS:
            return None
        return (
            f"the NAS answers slowly ({self._rtt * 1000:.0f} ms a round trip), so indexing over the "
            f"network takes long. {_next_step(self.typed_at(self.loc))}"
        )

    def reader(self) -> SmbReader:
        return SmbReader(self.creds, self.timeout)

    def complete_roots(self) -> list[tuple[str, str]]:
        return [(self.loc.url, "/")]

    def typed_at(self, loc: SmbLocation) -> SmbLocation:
        """`loc` with the share as the user wrote it (advice quotes names as the user knows them)."""
        return replace(loc, share=self.typed.share)

    def _stat(self, client: _Client) -> tuple[int, int, int]:
        """(attributes, size, mtime_ns) of the root."""
        self._rtt = client.rtt
        self._resolve(client)
        name = self.loc.path.replace("/", "\\")
        (cstatus, create), (lstatus, _) = client.call(self.loc.share, _stat_msgs(name))
        if cstatus in _NOT_FOUND:
            raise SourceError(f"root not found on the NAS: {self.label}")
        if cstatus == _ACCESS_DENIED:
            raise PermissionDenied(
                f"root not readable (permission denied): {self.label}. {_next_step(self.typed_at(self.loc))}"
            )
        if cstatus:
            raise SourceError(f"cannot open {self.label}: the NAS answered status 0x{cstatus:08x}")
        size, mtime_ns, attrs, file_id = _created(create)
        if lstatus:
            client.close_handle(self.loc.share, file_id)
        return attrs, size, mtime_ns

    def check(self) -> None:
        """Connect (once, bounded by GIVE_UP_S) and make sure the root is there and readable."""
        try:
            client = _client_for(self.loc, self.creds, self.timeout)
            try:
                self._stat(client)
            except _Offline as exc:
                _discard(client)
                raise SourceUnreachable(
                    f"the NAS at {self.loc.server} dropped the connection: {exc}. "
                    f"{_next_step(self.typed_at(self.loc))}"
                ) from exc
        except ShareNotFound as exc:  # name the share as the user wrote it, not as it is stored
            raise ShareNotFound(str(exc).replace(repr(self.loc.share), repr(self.typed.share))) from exc

    def _list(self, path: str) -> tuple[DirListing | WalkError, list[Folder]]:
        url, name = path, self.loc.name_of(path)
        try:
            got = _retrying(self.loc, self.creds, self.timeout, lambda c: _list_dir(c, self.loc.share, name))
        except _Offline as exc:
            return WalkError(url, f"cannot list folder: network error, {RETRIES} retries: {exc}", True), []
        except SourceError as exc:
            self._fatal = exc  # the NAS is gone (or the login stopped working): the walk stops
            return WalkError(url, str(exc), True), []
        if isinstance(got, OSError):
            reason = "permission denied" if isinstance(got, PermissionError) else got.strerror
            return WalkError(url, f"cannot list folder: {reason}", True), []
        files: list[Entry] = []
        subdirs: list[Folder] = []
        for entry, size, mtime_ns, attrs, file_id in got:
            if entry == "." or entry == ".." or attrs & _REPARSE_POINT:
                continue  # a junction, or a symlink the server shows as one: it may loop back up the tree
            if attrs & _DIRECTORY:
                with self._seen_lock:  # Samba follows symlinks: a folder seen before is a loop
                    if file_id in self._seen:
                        continue
                    if file_id:
                        self._seen.add(file_id)
                subdirs.append(Folder(f"{url}/{entry}", mtime_ns))
            else:
                files.append(Entry(entry, size, mtime_ns))
        # Recently changed folders first, as for a local tree: new studies are indexed early in a pass.
        subdirs.sort(key=lambda f: (-(f.mtime_ns or 0), f.path))
        return DirListing(url, "/", files, True), subdirs

    def walk(
        self, cancel: threading.Event, skip: SkipFn | None = None
    ) -> Iterator[DirListing | DirKept | WalkError]:
        self._fatal = None
        with self._seen_lock:
            self._seen.clear()
        try:
            attrs, size, mtime_ns = _retrying(self.loc, self.creds, self.timeout, self._stat)
        except _Offline as exc:
            raise SourceUnreachable(
                f"the NAS at {self.loc.server} keeps dropping the connection: {exc}. "
                f"{_next_step(self.typed_at(self.loc))}"
            ) from exc
        if not attrs & _DIRECTORY:
            folder, _, name = self.loc.url.rpartition("/")
            yield DirListing(folder, "/", [Entry(name, size, mtime_ns)], False)
            return
        if self.hint:
            log.warning("%s", self.hint)
        for item in _parallel_walk(self.loc.url, self._list, self.listers, cancel, skip):
            if self._fatal is not None:
                raise self._fatal
            yield item
        if self._fatal is not None:
            raise self._fatal


def test_connection(
    target: Any, settings: Any = None, limit: int = 20, timeout: float | None = None
) -> list[str]:
    """Connect as the NAS settings say and list the first `limit` entries of the share root, or of the
    folder the settings' path names (folders end in '/'). `target` is an smb:// URL (credentials from
    `settings`), or the NAS settings themselves: an object or mapping with host, share, path, port, user,
    password, domain. Raises the SourceError that says what is wrong, within GIVE_UP_S."""
    if isinstance(target, str):
        loc, settings = SmbLocation.parse(target), _loaded(settings)
        creds, wait = credentials_for(loc, settings), connect_timeout_from(settings)
    else:
        port = int(_setting(target, "port", default=DEFAULT_PORT))
        loc = SmbLocation.parse(
            url_for(_setting(target, "host"), _setting(target, "share"), str(_setting(target, "path")), port)
        )
        creds, wait = SmbCredentials.from_settings(target), connect_timeout_from(target)
    client = _client_for(loc, creds, timeout or wait)
    try:
        got = _list_dir(client, loc.share, loc.path.replace("/", "\\"))
    except _Offline as exc:
        _discard(client)
        raise SourceUnreachable(f"the NAS at {loc.server} dropped the connection: {exc}") from exc
    where = f"the folder {loc.path!r} in the share {loc.share!r}" if loc.path else f"the share {loc.share!r}"
    if isinstance(got, FileNotFoundError):
        raise SourceError(
            f"there is no folder {loc.path!r} in the share {loc.share!r} on {loc.server}: "
            "check the path (folders inside the share, separated by / or \\)"
        )
    if isinstance(got, OSError):
        raise PermissionDenied(f"cannot list {where}: {got.strerror}. {_next_step(loc)}")
    names = sorted(n + ("/" if a & _DIRECTORY else "") for n, _, _, a, _ in got if n not in (".", ".."))
    return names[:limit]


test_connection.__test__ = False  # type: ignore[attr-defined]  # a function, not a pytest test
