"""Direct SMB access to a NAS share: `smb://host[:port]/share/path` roots (`SmbTree`) and read-only header
reads (`SmbReader`), on smbprotocol's low-level API.

Why not smbclient's open/read/close: that is three round trips and ~3 ms of CPU per file. Here create + read
of the header prefix + close go out as one related compound request (one round trip), and many files are in
flight at once on one connection: `SmbReader.prefetch` sends a whole batch, keeping as many requests in
flight as keeps throughput growing (and halving that on a timeout). Listing a folder is one compound too
(create, two directory queries, close). A file object holds no handle on the NAS: reading past the prefix
fetches just the range asked for, in another compound.

Connections: one per (host, port, account) per process, made on first use and shared by every thread (the
folder listers here, the header readers in each worker process). Foreign exceptions are translated where
they enter: connecting and logging in raise `SourceUnreachable`, `AuthenticationFailed`, `ShareNotFound` or
`PermissionDenied`, each saying what to do next. On an established connection a network error (dropped,
timed out) is retried up to 3 times with exponential backoff and jitter over a new connection; after that
the folder or file is recorded as an error and the run goes on. When the NAS cannot be connected again at
all, the walk or the batch of reads raises `SourceUnreachable`: the run stops and the next run resumes.

Credentials come from the settings (`PACSINDEX_SMB_USER` / `PACSINDEX_SMB_PASSWORD`, or the saved NAS
settings); they never appear in labels, stored paths, exceptions or logs.
"""

from __future__ import annotations

import errno
import io
import logging
import random
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    AccessDenied,
    BadNetworkName,
    LogonFailure,
    SMBAuthenticationError,
    SMBResponseException,
)
from smbprotocol.file_info import FileAttributes, FileInformationClass
from smbprotocol.open import CreateDisposition, CreateOptions, ImpersonationLevel, Open, ShareAccess
from smbprotocol.open import DirectoryAccessMask as DirAccess
from smbprotocol.open import FilePipePrinterAccessMask as FileAccess
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from pacsindex.errors import (
    AuthenticationFailed,
    ConfigError,
    PermissionDenied,
    ShareNotFound,
    SourceError,
    SourceUnreachable,
)
from pacsindex.sources import DirListing, Entry, WalkError, _parallel_walk

log = logging.getLogger(__name__)

DEFAULT_PORT = 445
GIVE_UP_S = 30.0  # one attempt to connect, log in and open the share never takes longer
RETRIES = 3
BACKOFF_S = 0.25  # the first retry waits ~0.25 s, then ~0.5 s, ~1 s (each ±50 %)
PREFIX = 16384  # the header prefix read with the open: headers.read_header's first read
CHUNK = 65536  # reads past the prefix fetch at least this much
SLOW_MS = 25.0  # a round trip slower than this earns the hint to index from a mapped drive
MAX_WINDOW = 64  # files in flight per connection, at most

_NO_MORE_FILES, _END_OF_FILE, _ACCESS_DENIED = 0x80000006, 0xC0000011, 0xC0000022  # NTSTATUS (MS-ERREF)
_LOGON_FAILURE, _BAD_NETWORK_NAME = 0xC000006D, 0xC00000CC
_NOT_FOUND = {0xC000000F, 0xC0000034, 0xC000003A, 0xC0000056}  # no such file, name/path not found, deleting
_SESSION_GONE = {0xC00000C9, 0xC0000203, 0xC000035C}  # network name deleted, session deleted/expired
_SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
_FILETIME_EPOCH = 116444736000000000  # 1601-01-01 → 1970-01-01 in 100 ns ticks
_DIRECTORY, _REPARSE_POINT = 0x10, 0x400
_DIR_ENTRY = struct.Struct("<IIQQQQQQIIIIQ")  # FILE_ID_FULL_DIR_INFORMATION up to FileName (80 bytes)

DirEntry = tuple[str, int, int, int, int]  # name, size, mtime_ns, attributes, file id


# -- who and where ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmbCredentials:
    """The NAS account. The password is left out of repr, and never logged or put in a message."""

    user: str = ""
    password: str = field(default="", repr=False)
    domain: str = ""

    @property
    def login(self) -> str:
        return f"{self.domain}\\{self.user}" if self.domain and "\\" not in self.user else self.user

    @classmethod
    def from_settings(cls, settings: Any = None) -> SmbCredentials:
        """From `config.Settings` (smb_user, smb_password, smb_domain: PACSINDEX_SMB_*), or from NAS settings
        (an object or mapping with user, password, domain). None loads the settings."""
        if isinstance(settings, SmbCredentials):
            return settings
        settings = _loaded(settings)
        return cls(_setting(settings, "smb_user", "user"), _setting(settings, "smb_password", "password"),
                   _setting(settings, "smb_domain", "domain"))


def _loaded(settings: Any) -> Any:
    """The settings given, or (None) the settings from the environment and the config file."""
    if settings is not None:
        return settings
    from pacsindex import config

    return config.load()


def _setting(settings: Any, *names: str, default: Any = "") -> Any:
    for name in names:
        value = settings.get(name) if isinstance(settings, Mapping) else getattr(settings, name, None)
        if value not in (None, ""):
            return value
    return default


def connect_timeout_from(settings: Any) -> float:
    if isinstance(settings, SmbCredentials):
        return 10.0
    settings = _loaded(settings)
    return float(_setting(settings, "smb_connect_timeout", "connect_timeout", default=10.0))


@dataclass(frozen=True)
class SmbLocation:
    """A parsed `smb://host[:port]/share/path`, never with credentials in it."""

    host: str
    port: int
    share: str
    path: str = ""  # inside the share, '/'-separated, no leading or trailing '/'

    @classmethod
    def parse(cls, url: str) -> SmbLocation:
        if url[:6].lower() != "smb://":
            raise ConfigError(f"not an smb:// address: {url}")
        hostport, _, rest = url[6:].replace("\\", "/").partition("/")
        if "@" in hostport:
            raise ConfigError("put the NAS user name and password in PACSINDEX_SMB_USER and "
                              "PACSINDEX_SMB_PASSWORD (or the NAS settings), not in the smb:// address")
        host, port = hostport, DEFAULT_PORT
        if hostport.rsplit(":", 1)[-1].isdigit() and not hostport.endswith("]"):
            host, _, port_text = hostport.rpartition(":")
            port = int(port_text)
        parts = [p for p in rest.split("/") if p]
        if not host or not parts or not 0 < port < 65536:
            raise ConfigError(f"expected smb://host[:port]/share/path, got {url!r}")
        return cls(host.lower(), port, parts[0], "/".join(parts[1:]))

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}" if self.port != DEFAULT_PORT else self.host

    @property
    def share_url(self) -> str:
        return f"smb://{self.server}/{self.share}"

    @property
    def url(self) -> str:
        return self.share_url + (f"/{self.path}" if self.path else "")

    def name_of(self, url: str) -> str:
        """The share-relative SMB name (backslashes) of a URL on this share."""
        base = self.share_url
        if url[: len(base)].lower() != base.lower():
            raise ValueError(f"{url} is not on {base}")
        return url[len(base) :].strip("/").replace("/", "\\")


def url_for(host: str, share: str, path: str = "", port: int | None = None) -> str:
    """The smb:// root for NAS settings (host, share, path inside the share, port)."""
    inner = "/".join(p for p in path.replace("\\", "/").split("/") if p)
    return SmbLocation(host.strip().lower(), port or DEFAULT_PORT, share.strip("/\\ "), inner).url


def _next_step(loc: SmbLocation) -> str:
    return (f"Or map the share in Windows (net use Z: \\\\{loc.host}\\{loc.share}) and index the drive: "
            f"pacsindex index Z:\\{loc.path.replace('/', chr(92))}")


# -- errors at the boundary ------------------------------------------------------------------------------


class _Offline(Exception):
    """A network failure on an established connection: retried over a new one."""


def _connect_error(exc: BaseException, loc: SmbLocation, creds: SmbCredentials, timeout: float,
                   expired: bool) -> SourceError:
    """Translate what smbprotocol raised while connecting, logging in or opening the share."""
    where, step = f"the NAS at {loc.server}", _next_step(loc)
    cause = exc.__cause__ if isinstance(exc, ValueError) else exc  # smbprotocol wraps socket errors so
    status = getattr(exc, "status", None) or getattr(exc, "ntstatus", None)
    if isinstance(exc, (LogonFailure, SMBAuthenticationError)) or status == _LOGON_FAILURE:
        return AuthenticationFailed(
            f"{where} refused the login (user {creds.login!r}): check PACSINDEX_SMB_USER and "
            f"PACSINDEX_SMB_PASSWORD (or the NAS settings); a domain account is written DOMAIN\\user. {step}")
    if isinstance(exc, BadNetworkName) or status == _BAD_NETWORK_NAME or getattr(exc, "errno", 0) == 2:
        return ShareNotFound(f"{where} has no share named {loc.share!r}: check the share name (in Windows, "
                             f"net view \\\\{loc.host} lists them). {step}")
    if isinstance(exc, AccessDenied) or status == _ACCESS_DENIED:
        return PermissionDenied(f"user {creds.login!r} may not open the share {loc.share!r} on {where}: ask "
                                f"the NAS administrator for read access. {step}")
    if expired or isinstance(cause, TimeoutError) or "timeout" in str(exc).lower():
        return SourceUnreachable(f"{where} timed out: no answer within {timeout:g} s. Check that it is "
                                 f"switched on and reachable from this computer (ping {loc.host}). {step}")
    if isinstance(cause, ConnectionRefusedError):
        reason = f"connection refused on port {loc.port}. Is SMB file sharing switched on there?"
    elif type(cause).__name__ == "gaierror":
        reason = f"the host name {loc.host!r} is not known. Check it, or use the NAS's IP address."
    elif isinstance(cause, OSError):
        reason = f"{cause.strerror or cause}. Check the network (cable, Wi-Fi, VPN) and the address."
    else:
        reason = f"{type(exc).__name__}: {exc}."
    return SourceUnreachable(f"cannot connect to {where}: {reason} {step}")


def _status_error(status: int) -> OSError:
    """The OSError the local reader would raise for an SMB status on one file or folder."""
    if status in _NOT_FOUND:
        return FileNotFoundError(errno.ENOENT, "not found on the NAS")
    if status == _ACCESS_DENIED:
        return PermissionError(errno.EACCES, "access denied by the NAS")
    return OSError(errno.EIO, f"the NAS answered status 0x{status:08x}")


# -- the wire: compounds built with smbprotocol, responses parsed with struct -----------------------------


def _create(tree: TreeConnect, name: str, access: int, options: int) -> tuple[Open, Any]:
    o = Open(tree, name)
    msg, _ = o.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL,
                      _SHARE_ALL, CreateDisposition.FILE_OPEN, options, send=False)
    return o, msg


def _file_msgs(tree: TreeConnect, name: str, offset: int, length: int) -> list[Any]:
    """Open a file read-only, read [offset, offset+length), close: one compound."""
    access = FileAccess.FILE_READ_DATA | FileAccess.FILE_READ_ATTRIBUTES
    o, create = _create(tree, name, access, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return [create, o.read(offset, length, send=False)[0], o.close(send=False)[0]]


def _stat_msgs(tree: TreeConnect, name: str) -> list[Any]:
    """Open a file or folder for its attributes (in the create response) and close it."""
    o, create = _create(tree, name, FileAccess.FILE_READ_ATTRIBUTES, 0)
    return [create, o.close(send=False)[0]]


def _dir_msgs(tree: TreeConnect, name: str, queries: int, close: bool, file_id: bytes | None = None
              ) -> list[Any]:
    """Open a folder (unless `file_id` is an open one), query its entries `queries` times, maybe close it."""
    if file_id is None:
        access = DirAccess.FILE_LIST_DIRECTORY | DirAccess.FILE_READ_ATTRIBUTES
        o, create = _create(tree, name, access, CreateOptions.FILE_DIRECTORY_FILE)
        msgs = [create]
    else:
        o, msgs = Open(tree, name), []
        o.file_id = file_id
    info = FileInformationClass.FILE_ID_FULL_DIRECTORY_INFORMATION
    msgs += [o.query_directory("*", info, send=False)[0] for _ in range(queries)]
    return msgs + [o.close(send=False)[0]] if close else msgs


def _created(body: bytes) -> tuple[int, int, int, bytes]:
    """(size, mtime_ns, attributes, file id) from an SMB2 CREATE response."""
    (mtime,) = struct.unpack_from("<Q", body, 24)
    size, attrs = struct.unpack_from("<QI", body, 48)
    return size, (mtime - _FILETIME_EPOCH) * 100, attrs, body[64:80]


def _payload(body: bytes, fmt: str) -> bytes:
    """The data of a READ ('<BxI') or QUERY_DIRECTORY ('<HI') response (its offset counts the header)."""
    offset, length = struct.unpack_from(fmt, body, 2)
    return body[offset - 64 : offset - 64 + length]


def _dir_entries(buf: bytes) -> Iterator[DirEntry]:
    off = 0
    while off + 80 <= len(buf):
        nxt, _, _, _, mtime, _, size, _, attrs, nlen, _, _, fid = _DIR_ENTRY.unpack_from(buf, off)
        # A name that does not decode could not be opened by name either: it becomes an error, not a crash.
        yield buf[off + 80 : off + 80 + nlen].decode("utf-16-le", "replace"), size, \
            (mtime - _FILETIME_EPOCH) * 100, attrs, fid
        if not nxt:
            return
        off += nxt


class _Pacer:
    """How many files to keep in flight on one connection: doubled while throughput grows, cut by a quarter
    when it falls, halved on a timeout."""

    def __init__(self) -> None:
        self.window, self.most, self._best = 4, MAX_WINDOW, 0.0
        self._lock = threading.Lock()

    def record(self, files: int, seconds: float) -> None:
        if files < 2 * self.window or seconds <= 0:
            return  # too few to judge
        rate = files / seconds
        with self._lock:
            if rate > self._best * 1.1:
                self._best, self.window = rate, min(self.most, self.window * 2)
            elif rate < self._best * 0.8:
                self._best, self.window = rate, max(1, self.window * 3 // 4)

    def timed_out(self) -> None:
        with self._lock:
            self.window, self._best = max(1, self.window // 2), 0.0


class _Client:
    """One connection and session to a NAS, with its open shares; shared by every thread of a process."""

    def __init__(self, loc: SmbLocation, creds: SmbCredentials, timeout: float) -> None:
        self.loc, self.creds, self.timeout = loc, creds, timeout
        self.trees: dict[str, TreeConnect] = {}
        self.lock = threading.Lock()
        self.pacer = _Pacer()
        self.conn = Connection(uuid.uuid4(), loc.host, loc.port, require_signing=True)
        self.session: Session | None = None
        self.rtt = 0.0  # seconds: the quickest of a few echoes while nothing else was in flight

    def _bounded(self, seconds: float, step: Callable[[], Any], share: str) -> None:
        """Run a handshake step; if the NAS has not answered within `seconds`, close the socket under it."""
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self.drop()

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            step()
        except Exception as exc:
            if expired.is_set() or not isinstance(exc, SMBResponseException):
                self.drop()  # a refused login or share leaves the connection usable
            loc = SmbLocation(self.loc.host, self.loc.port, share)
            raise _connect_error(exc, loc, self.creds, self.timeout, expired.is_set()) from exc
        finally:
            timer.cancel()

    def connect(self) -> None:
        if not self.creds.user:
            raise AuthenticationFailed("no NAS user name: set PACSINDEX_SMB_USER and PACSINDEX_SMB_PASSWORD "
                                       f"(or the NAS settings). {_next_step(self.loc)}")
        lib = logging.getLogger("smbprotocol")  # it logs file names at INFO; folder names are patient data
        if lib.level == logging.NOTSET:
            lib.setLevel(logging.WARNING)

        def handshake() -> None:
            self.conn.connect(timeout=self.timeout)
            self.session = Session(self.conn, self.creds.login, self.creds.password, require_encryption=False)
            self.session.connect()
            self._open_tree(self.loc.share)
            rtts = []
            for credits in (512, 1, 1):  # credits to keep many requests in flight; the round trip, thrice
                started = time.monotonic()
                try:
                    self.conn.echo(self.session.session_id, int(self.timeout), credit_request=credits)
                except Exception:
                    log.debug("the NAS did not answer an echo", exc_info=True)
                    break
                rtts.append(time.monotonic() - started)
            self.rtt = min(rtts, default=0.0)

        self._bounded(GIVE_UP_S, handshake, self.loc.share)
        window = self.conn.sequence_window
        self.pacer.most = max(1, min(MAX_WINDOW, (window["high"] - window["low"]) // 8))
        log.info("connected to the NAS at %s (SMB dialect 0x%x)", self.loc.server, self.conn.dialect)

    def _open_tree(self, share: str) -> TreeConnect:
        tree = TreeConnect(self.session, rf"\\{self.loc.host}\{share}")
        tree.connect()
        self.trees[share.lower()] = tree
        return tree

    def tree(self, share: str) -> TreeConnect:
        with self.lock:
            if share.lower() not in self.trees:
                self._bounded(self.timeout, lambda: self._open_tree(share), share)
            return self.trees[share.lower()]

    @property
    def alive(self) -> bool:
        return self.conn.transport is not None and bool(self.conn.transport.connected)

    def send(self, tree: TreeConnect, msgs: list[Any]) -> list[Any]:
        assert self.session is not None
        try:
            sent = self.conn.send_compound(msgs, self.session.session_id, tree.tree_connect_id, related=True)
        except Exception as exc:  # SMBConnectionClosed, out of credits, a socket error
            raise _Offline(f"connection lost ({type(exc).__name__})") from exc
        return list(sent)

    def collect(self, requests: Sequence[Any]) -> list[tuple[int, bytes]]:
        """(status, response body) of each request of a compound; the body is b'' unless the status is 0."""
        out = []
        for req in requests:
            try:
                out.append((0, self.conn.receive(req, timeout=self.timeout, resolve_symlinks=False)["data"]
                            .get_value()))
            except SMBResponseException as exc:
                if exc.status in _SESSION_GONE:
                    raise _Offline(f"the NAS ended the session (0x{exc.status:08x})") from exc
                out.append((exc.status, b""))
            except Exception as exc:
                if "timeout" in str(exc).lower():
                    self.pacer.timed_out()
                    raise _Offline(f"timed out: no answer within {self.timeout:g} s") from exc
                raise _Offline(f"connection lost ({type(exc).__name__})") from exc
        return out

    def call(self, share: str, build: Callable[[TreeConnect], list[Any]]) -> list[tuple[int, bytes]]:
        tree = self.tree(share)
        return self.collect(self.send(tree, build(tree)))

    def close_handle(self, share: str, file_id: bytes) -> None:
        """Close a handle the server kept open because it failed the close chained after an error."""
        tree = self.tree(share)
        o = Open(tree, "")
        o.file_id = file_id
        self.collect(self.send(tree, [o.close(send=False)[0]]))

    def drop(self) -> None:
        if self.conn.transport is not None:
            try:
                self.conn.disconnect(close=False)
            except Exception:
                log.debug("closing a broken SMB connection", exc_info=True)


_Key = tuple[str, int, str, str]
_clients: dict[_Key, _Client] = {}
_failures: dict[_Key, tuple[float, SourceError]] = {}
_clients_lock = threading.Lock()


def _client_for(loc: SmbLocation, creds: SmbCredentials, timeout: float) -> _Client:
    """This process's connection to the NAS at `loc` as `creds`, connecting (bounded by GIVE_UP_S) if needed.
    Threads wait for one attempt instead of racing, and those that waited share its failure."""
    key = (loc.host, loc.port, creds.login.lower(), creds.password)
    asked = time.monotonic()
    with _clients_lock:
        client = _clients.get(key)
        if client is not None and client.alive:
            return client
        failed = _failures.get(key)
        if failed is not None and failed[0] >= asked:
            raise type(failed[1])(str(failed[1])) from failed[1]
        client = _Client(SmbLocation(loc.host, loc.port, loc.share), creds, timeout)
        try:
            client.connect()
        except SourceError as exc:
            client.drop()
            _failures[key] = (time.monotonic(), exc)
            raise
        _failures.pop(key, None)
        _clients[key] = client
        return client


def _discard(client: _Client) -> None:
    with _clients_lock:
        for key in [k for k, v in _clients.items() if v is client]:
            del _clients[key]
    client.drop()


def close_connections() -> None:
    """Close this process's NAS connections (after the NAS settings change, and in tests)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
        _failures.clear()
    for client in clients:
        client.drop()


def _retrying(loc: SmbLocation, creds: SmbCredentials, timeout: float, op: Callable[[_Client], Any],
              wait: Callable[[float], Any] = time.sleep) -> Any:
    """Run `op` on a live connection. A network error is retried up to RETRIES times, over a new connection,
    after an exponential, jittered pause. Raises SourceError when the NAS cannot be connected again, and
    _Offline when requests kept failing on connections that did come up."""
    failures = 0
    while True:
        client = None
        try:
            client = _client_for(loc, creds, timeout)
            return op(client)
        except (SourceUnreachable, _Offline) as exc:
            if client is not None:
                _discard(client)
            failures += 1
            if failures > RETRIES:
                raise
            log.warning("NAS %s: %s; retry %d of %d", loc.server, str(exc).split(". ")[0], failures, RETRIES)
            wait(BACKOFF_S * 2 ** (failures - 1) * random.uniform(0.5, 1.5))


# -- reading files ---------------------------------------------------------------------------------------


def _head(client: _Client, share: str, replies: list[tuple[int, bytes]]) -> tuple[int, bytes] | OSError:
    """(size, data) from the replies to a create + read + close compound."""
    (cstatus, create), (rstatus, read), (lstatus, _) = replies
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
        SmbLocation.parse(url)
        settings = _loaded(settings)
        return cls(SmbCredentials.from_settings(settings), connect_timeout_from(settings))

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
                for path in group:
                    heads.setdefault(path, OSError(errno.EIO, f"network error, {RETRIES} retries: {exc}"))

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
                replies = client.collect(client.send(tree, _file_msgs(tree, name, at, want)))
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
            raise OSError(errno.EIO, f"network error, {RETRIES} retries: {exc}") from exc


@dataclass
class _Batch:
    """Fetch the header prefixes of files on one share, keeping the pacer's window of them in flight."""

    loc: SmbLocation
    paths: list[str]
    heads: dict[str, tuple[int, bytes] | OSError]

    def __call__(self, client: _Client) -> None:
        todo = [p for p in self.paths if p not in self.heads]  # a retry fetches only what is missing
        tree, share = client.tree(self.loc.share), self.loc.share
        inflight: deque[tuple[str, list[Any]]] = deque()
        started = time.monotonic()
        for path in todo:
            inflight.append((path, client.send(tree, _file_msgs(tree, self.loc.name_of(path), 0, PREFIX))))
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
    (cstatus, create), *queries, (lstatus, _) = client.call(share, lambda t: _dir_msgs(t, name, 2, True))
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
    (cstatus, create), (status, body) = client.call(share, lambda t: _dir_msgs(t, name, 1, False))
    if cstatus:
        return _status_error(cstatus)
    file_id = _created(create)[3]
    entries = []
    try:
        while status != _NO_MORE_FILES:
            if status:
                return _status_error(status)
            entries.extend(_dir_entries(_payload(body, "<HI")))
            [(status, body)] = client.call(share, lambda t: _dir_msgs(t, name, 1, False, file_id))
    finally:
        client.close_handle(share, file_id)
    return entries


class SmbTree:
    """A folder tree on an SMB share, listed by a few threads over one connection. Stored paths are
    `smb://host[:port]/share/dir/name`; the label is the root's URL, without credentials."""

    def __init__(self, loc: SmbLocation, creds: SmbCredentials, timeout: float = 10.0, listers: int = 8):
        self.loc, self.creds, self.timeout = loc, creds, timeout
        self.label = loc.url
        self.listers = max(1, listers)
        self._fatal: SourceError | None = None
        self._seen: set[int] = set()
        self._seen_lock = threading.Lock()
        self._rtt: float | None = None

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> SmbTree:
        loc, settings = SmbLocation.parse(url), _loaded(settings)
        return cls(loc, SmbCredentials.from_settings(settings), connect_timeout_from(settings))

    @property
    def hint(self) -> str | None:
        """Advice for the run status when the NAS answers slowly."""
        if self._rtt is None or self._rtt * 1000 < SLOW_MS:
            return None
        return (f"the NAS answers slowly ({self._rtt * 1000:.0f} ms a round trip), so indexing over the "
                f"network takes long. {_next_step(self.loc)}")

    def reader(self) -> SmbReader:
        return SmbReader(self.creds, self.timeout)

    def complete_roots(self) -> list[tuple[str, str]]:
        return [(self.loc.url, "/")]

    def _stat(self, client: _Client) -> tuple[int, int, int]:
        """(attributes, size, mtime_ns) of the root."""
        self._rtt = client.rtt
        name = self.loc.path.replace("/", "\\")
        (cstatus, create), (lstatus, _) = client.call(self.loc.share, lambda t: _stat_msgs(t, name))
        if cstatus in _NOT_FOUND:
            raise SourceError(f"root not found on the NAS: {self.label}")
        if cstatus == _ACCESS_DENIED:
            raise PermissionDenied(f"root not readable (permission denied): {self.label}. "
                                   f"{_next_step(self.loc)}")
        if cstatus:
            raise SourceError(f"cannot open {self.label}: the NAS answered status 0x{cstatus:08x}")
        size, mtime_ns, attrs, file_id = _created(create)
        if lstatus:
            client.close_handle(self.loc.share, file_id)
        return attrs, size, mtime_ns

    def check(self) -> None:
        """Connect (once, bounded by GIVE_UP_S) and make sure the root is there and readable."""
        client = _client_for(self.loc, self.creds, self.timeout)
        try:
            self._stat(client)
        except _Offline as exc:
            _discard(client)
            raise SourceUnreachable(f"the NAS at {self.loc.server} dropped the connection: {exc}. "
                                    f"{_next_step(self.loc)}") from exc

    def _list(self, path: str) -> tuple[DirListing | WalkError, list[str]]:
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
        subdirs: list[str] = []
        for entry, size, mtime_ns, attrs, file_id in got:
            if entry == "." or entry == ".." or attrs & _REPARSE_POINT:
                continue  # a junction, or a symlink the server shows as one: it may loop back up the tree
            if attrs & _DIRECTORY:
                with self._seen_lock:  # Samba follows symlinks: a folder seen before is a loop
                    if file_id in self._seen:
                        continue
                    if file_id:
                        self._seen.add(file_id)
                subdirs.append(f"{url}/{entry}")
            else:
                files.append(Entry(entry, size, mtime_ns))
        return DirListing(url, "/", files, True), subdirs

    def walk(self, cancel: threading.Event) -> Iterator[DirListing | WalkError]:
        self._fatal = None
        with self._seen_lock:
            self._seen.clear()
        try:
            attrs, size, mtime_ns = _retrying(self.loc, self.creds, self.timeout, self._stat)
        except _Offline as exc:
            raise SourceUnreachable(f"the NAS at {self.loc.server} keeps dropping the connection: {exc}. "
                                    f"{_next_step(self.loc)}") from exc
        if not attrs & _DIRECTORY:
            folder, _, name = self.loc.url.rpartition("/")
            yield DirListing(folder, "/", [Entry(name, size, mtime_ns)], False)
            return
        if self.hint:
            log.warning("%s", self.hint)
        for item in _parallel_walk(self.loc.url, self._list, self.listers, cancel):
            if self._fatal is not None:
                raise self._fatal
            yield item
        if self._fatal is not None:
            raise self._fatal


def test_connection(target: Any, settings: Any = None, limit: int = 20) -> list[str]:
    """Connect as the NAS settings say and list the first `limit` entries of the share root (folders end
    in '/'). `target` is an smb:// URL (credentials from `settings`), or the NAS settings themselves: an
    object or mapping with host, share, port, user, password, domain. Raises the SourceError that says what
    is wrong, within GIVE_UP_S."""
    if isinstance(target, str):
        loc = SmbLocation.parse(target)
        creds, timeout = SmbCredentials.from_settings(settings), connect_timeout_from(settings)
    else:
        port = int(_setting(target, "port", default=DEFAULT_PORT))
        loc = SmbLocation.parse(url_for(_setting(target, "host"), _setting(target, "share"), port=port))
        creds, timeout = SmbCredentials.from_settings(target), connect_timeout_from(target)
    client = _client_for(loc, creds, timeout)
    try:
        got = _list_dir(client, loc.share, "")
    except _Offline as exc:
        _discard(client)
        raise SourceUnreachable(f"the NAS at {loc.server} dropped the connection: {exc}") from exc
    if isinstance(got, OSError):
        raise PermissionDenied(f"cannot list the share {loc.share!r}: {got.strerror}. {_next_step(loc)}")
    names = sorted(n + ("/" if a & _DIRECTORY else "") for n, _, _, a, _ in got if n not in (".", ".."))
    return names[:limit]


test_connection.__test__ = False  # type: ignore[attr-defined]  # a function, not a pytest test
