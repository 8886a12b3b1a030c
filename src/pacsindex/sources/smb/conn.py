"""Connections to a NAS over SMB: `smb://host[:port]/share/path` addresses (`SmbLocation`), the account
(`SmbCredentials`), compound requests sent and answered as bytes (`wire.py`, on the connection smbprotocol
opened and logged in), and one connection per (host, port, account) per process, shared by every thread.

Why compounds: smbclient's open/read/close is three round trips and ~3 ms of CPU per file. Here create +
read of the header prefix + close go out as one related compound request (one round trip), and many files
are in flight at once on one connection (`_Pacer` decides how many). Listing a folder is one compound too
(create, two directory queries, close).

Foreign exceptions are translated where they enter: connecting and logging in raise `SourceUnreachable`,
`AuthenticationFailed`, `ShareNotFound` or `PermissionDenied`, each saying what to do next; a network error on
an established connection becomes `_Offline`, which `_retrying` retries up to 3 times with exponential backoff
and jitter over a new connection. What the files and folders are (sources, readers) is
`pacsindex.sources.smb.reader`.
Passwords never appear in labels, paths, exceptions or logs, and neither does the login exchange: the
`spnego`, `smbprotocol` and `smbclient` loggers are held at WARNING before any connection (`quiet_libraries`),
since at DEBUG spnego prints the NTLM CHALLENGE and AUTHENTICATE messages (the user name and an NTLMv2
response, enough to crack the password offline).

SMB3 encryption is asked for whenever the NAS offers it (patient names would otherwise cross the LAN in
clear); `smb_require_encryption` refuses a NAS that does not. Kerberos: smbprotocol logs in through
pyspnego, which uses Kerberos when the machine has a ticket for the NAS (gssapi/krb5 installed, a domain
account, `kinit` or a Windows logon) and falls back to NTLM otherwise; the user name is then `user@REALM`.

A NAS that stops answering mid-run (frozen, unplugged): the request in flight gives up after the timeout,
and the retries that follow share one more timeout between them, so the run ends within about twice
`smb_connect_timeout` rather than after every retry has waited its own (a failed run also stops its
worker processes at once instead of letting each finish a job that would wait the same way). Each retry
logs one line: `NAS <server>: <what happened>; retry <n> of <RETRIES>`.
"""

from __future__ import annotations

import errno
import logging
import random
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    AccessDenied,
    BadNetworkName,
    LogonFailure,
    SMBAuthenticationError,
    SMBResponseException,
)
from smbprotocol.file_info import FileAttributes, FileInformationClass
from smbprotocol.open import CreateDisposition, CreateOptions, ShareAccess
from smbprotocol.open import DirectoryAccessMask as DirAccess
from smbprotocol.open import FilePipePrinterAccessMask as FileAccess
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from pacsindex.errors import (
    AuthenticationFailed,
    PermissionDenied,
    ShareNotFound,
    SourceError,
    SourceUnreachable,
)
from pacsindex.sources.smb import wire
from pacsindex.sources.smb.address import (
    DEFAULT_PORT,
    SmbCredentials,
    SmbLocation,
    _next_step,
    connect_timeout_from,
    unc_host,
    url_for,
)

__all__ = [  # the addresses are importable from here too
    "DEFAULT_PORT",
    "SmbCredentials",
    "SmbLocation",
    "close_connections",
    "connect_timeout_from",
    "quiet_libraries",
    "url_for",
]

log = logging.getLogger(__name__)
GIVE_UP_S = 30.0  # one attempt to connect, log in and open the share never takes longer
RETRIES = 3
BACKOFF_S = 0.25  # the first retry waits ~0.25 s, then ~0.5 s, ~1 s (each ±50 %)
MAX_WINDOW = 64  # files in flight per connection, at most

_NO_MORE_FILES, _END_OF_FILE, _ACCESS_DENIED = 0x80000006, 0xC0000011, 0xC0000022  # NTSTATUS (MS-ERREF)
_LOGON_FAILURE, _BAD_NETWORK_NAME = 0xC000006D, 0xC00000CC
_NOT_FOUND = {0xC000000F, 0xC0000034, 0xC000003A, 0xC0000056}  # no such file, name/path not found, deleting
_SESSION_GONE = {0xC00000C9, 0xC0000203, 0xC000035C}  # network name deleted, session deleted/expired
_SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
_FILE_OPEN = CreateDisposition.FILE_OPEN
_ID_FULL_DIRECTORY = FileInformationClass.FILE_ID_FULL_DIRECTORY_INFORMATION
_FILETIME_EPOCH = 116444736000000000  # 1601-01-01 → 1970-01-01 in 100 ns ticks
_DIRECTORY, _REPARSE_POINT = 0x10, 0x400
_DIR_ENTRY = struct.Struct("<IIQQQQQQIIIIQ")  # FILE_ID_FULL_DIR_INFORMATION up to FileName (80 bytes)

DirEntry = tuple[str, int, int, int, int]  # name, size, mtime_ns, attributes, file id


# -- what the SMB libraries may log ------------------------------------------------------------------------

_LIBRARIES = ("spnego", "smbprotocol", "smbclient")


class _WarningsOnly(logging.Filter):
    """Drops a library's records below WARNING even if someone lowers its level again later."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_libraries() -> None:
    """Hold the SMB libraries' loggers at WARNING: at DEBUG spnego logs the NTLM exchange, and smbprotocol
    logs file names (patient data) at INFO. Called before every connection; cheap when already done."""
    for name in _LIBRARIES:
        lib = logging.getLogger(name)
        lib.setLevel(logging.WARNING)
        if not any(isinstance(f, _WarningsOnly) for f in lib.filters):
            lib.addFilter(_WarningsOnly())


# -- errors at the boundary ------------------------------------------------------------------------------


class _Offline(Exception):
    """A network failure on an established connection: retried over a new one."""


class _NotEncrypted(Exception):
    """The NAS does not offer SMB3 encryption and the settings require it."""


def _connect_error(
    exc: BaseException, loc: SmbLocation, creds: SmbCredentials, timeout: float, expired: bool
) -> SourceError:
    """Translate what smbprotocol raised while connecting, logging in or opening the share."""
    where, step = f"the NAS at {loc.server}", _next_step(loc)
    if isinstance(exc, _NotEncrypted):
        return SourceError(
            f"{where} does not offer SMB3 encryption and smb_require_encryption is set: "
            "switch encryption on at the NAS (SMB 3, e.g. Samba's server smb encrypt = "
            "desired), or unset smb_require_encryption to accept unencrypted traffic."
        )
    cause = exc.__cause__ if isinstance(exc, ValueError) else exc  # smbprotocol wraps socket errors so
    status = getattr(exc, "status", None) or getattr(exc, "ntstatus", None)
    if isinstance(exc, (LogonFailure, SMBAuthenticationError)) or status == _LOGON_FAILURE:
        return AuthenticationFailed(
            f"{where} refused the login (user {creds.login!r}): check PACSINDEX_SMB_USER and "
            f"PACSINDEX_SMB_PASSWORD (or the NAS settings); a domain account is written DOMAIN\\user. {step}"
        )
    if isinstance(exc, BadNetworkName) or status == _BAD_NETWORK_NAME or getattr(exc, "errno", 0) == 2:
        return ShareNotFound(
            f"{where} has no share named {loc.share!r}: check the share name (in Windows, "
            f"net view \\\\{loc.host} lists them)"
        )  # no "map the share": there is none
    if isinstance(exc, AccessDenied) or status == _ACCESS_DENIED:
        return PermissionDenied(
            f"user {creds.login!r} may not open the share {loc.share!r} on {where}: ask "
            f"the NAS administrator for read access. {step}"
        )
    if expired or isinstance(cause, TimeoutError) or "timeout" in str(exc).lower():
        return SourceUnreachable(
            f"{where} timed out: no answer within {timeout:g} s. Check that it is "
            f"switched on and reachable from this computer (ping {loc.host}). {step}"
        )
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


# -- the compounds: requests as bytes (wire.py), responses parsed with struct ----------------------------


def _open(name: str, access: int, options: int) -> wire.Message:
    return wire.create(name, access, FileAttributes.FILE_ATTRIBUTE_NORMAL, _SHARE_ALL, _FILE_OPEN, options)


def _file_msgs(name: str, offset: int, length: int) -> list[wire.Message]:
    """Open a file read-only, read [offset, offset+length), close: one compound."""
    access = FileAccess.FILE_READ_DATA | FileAccess.FILE_READ_ATTRIBUTES
    opened = _open(name, access, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return [opened, wire.read(offset, length), wire.close()]


def _stat_msgs(name: str) -> list[wire.Message]:
    """Open a file or folder for its attributes (in the create response) and close it."""
    return [_open(name, FileAccess.FILE_READ_ATTRIBUTES, 0), wire.close()]


def _dir_msgs(name: str, queries: int, close: bool, file_id: bytes | None = None) -> list[wire.Message]:
    """Open a folder (unless `file_id` is an open one), query its entries `queries` times, maybe close it."""
    msgs = []
    if file_id is None:
        access = DirAccess.FILE_LIST_DIRECTORY | DirAccess.FILE_READ_ATTRIBUTES
        msgs.append(_open(name, access, CreateOptions.FILE_DIRECTORY_FILE))
    fid = file_id or wire.RELATED_FILE
    msgs += [wire.query_directory(_ID_FULL_DIRECTORY, "*", fid) for _ in range(queries)]
    return msgs + [wire.close(fid)] if close else msgs


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
        yield (
            buf[off + 80 : off + 80 + nlen].decode("utf-16-le", "replace"),
            size,
            (mtime - _FILETIME_EPOCH) * 100,
            attrs,
            fid,
        )
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
        self.wire: wire.Wire | None = None  # the byte-level requests, once the handshake is done
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

    def connect(self, give_up: float = GIVE_UP_S) -> None:
        if not self.creds.user:
            raise AuthenticationFailed(
                "no NAS user name: set PACSINDEX_SMB_USER and PACSINDEX_SMB_PASSWORD "
                f"(or the NAS settings). {_next_step(self.loc)}"
            )
        quiet_libraries()

        def handshake() -> None:
            self.conn.connect(timeout=min(self.timeout, give_up))
            offered = bool(self.conn.supports_encryption)
            if self.creds.require_encryption and not offered:
                raise _NotEncrypted
            # Encrypt whenever the NAS can: smbprotocol then encrypts every message of the session.
            self.session = Session(
                self.conn, self.creds.login, self.creds.password, require_encryption=offered
            )
            self.session.connect()
            self._open_tree(self.loc.share)
            # The receiving thread is waiting for the next packet on the transport it had: the echoes'
            # replies end that wait, and from then on it reads through the Wire.
            self.wire = wire.Wire(self.conn)
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
            if not self.wire.reading.wait(self.timeout):
                raise TimeoutError("the NAS did not answer an echo")

        self._bounded(give_up, handshake, self.loc.share)
        window = self.conn.sequence_window
        self.pacer.most = max(1, min(MAX_WINDOW, (window["high"] - window["low"]) // 8))
        log.info(
            "connected to the NAS at %s (SMB dialect 0x%x, %s)",
            self.loc.server,
            self.conn.dialect,
            "encrypted" if self.encrypted else "not encrypted",
        )

    @property
    def encrypted(self) -> bool:
        return bool(self.session is not None and self.session.encrypt_data)

    def _open_tree(self, share: str) -> TreeConnect:
        tree = TreeConnect(self.session, rf"\\{unc_host(self.loc.host)}\{share}")
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

    def send(self, tree: TreeConnect, msgs: list[wire.Message]) -> list[wire.Reply]:
        assert self.session is not None and self.wire is not None
        try:
            return self.wire.request(self.session, tree, msgs)
        except Exception as exc:  # the connection is closed (and why), out of credits, a socket error
            why = str(exc) if isinstance(exc, wire.WireError) else type(exc).__name__
            raise _Offline(f"connection lost ({why})") from exc

    def collect(self, replies: Sequence[wire.Reply]) -> list[tuple[int, bytes]]:
        """(status, response body) of each request of a compound; the body is b'' unless the status is 0."""
        out = []
        for reply in replies:
            try:
                status, body = reply.wait(self.timeout)
            except TimeoutError as exc:
                self.pacer.timed_out()
                raise _Offline(f"timed out: no answer within {self.timeout:g} s") from exc
            except wire.WireError as exc:
                raise _Offline(f"connection lost ({exc})") from exc
            if status in _SESSION_GONE:
                raise _Offline(f"the NAS ended the session (0x{status:08x})")
            out.append((status, body))
        return out

    def call(self, share: str, msgs: list[wire.Message]) -> list[tuple[int, bytes]]:
        return self.collect(self.send(self.tree(share), msgs))

    def close_handle(self, share: str, file_id: bytes) -> None:
        """Close a handle the server kept open because it failed the close chained after an error."""
        self.call(share, [wire.close(file_id)])

    def drop(self) -> None:
        if self.conn.transport is not None:
            try:
                self.conn.disconnect(close=False)
            except Exception:
                log.debug("closing a broken SMB connection", exc_info=True)


_Key = tuple[str, int, str, str, bool]
_clients: dict[_Key, _Client] = {}
_failures: dict[_Key, tuple[float, SourceError]] = {}
_clients_lock = threading.Lock()  # guards the dicts above; never held while connecting
_connecting: dict[_Key, threading.Lock] = {}  # one per NAS address and account: held while connecting


def _client_for(
    loc: SmbLocation, creds: SmbCredentials, timeout: float, give_up: float = GIVE_UP_S
) -> _Client:
    """This process's connection to the NAS at `loc` as `creds`, connecting (bounded by GIVE_UP_S) if needed.
    Threads wanting the same connection wait for one attempt instead of racing, and those that waited share
    its failure. The wait is per connection: a slow or wrong address (an admin's Test connection, up to
    GIVE_UP_S) never holds up reads from the NAS that works."""
    key = (loc.host, loc.port, creds.login.lower(), creds.password, creds.require_encryption)
    asked = time.monotonic()
    with _clients_lock:
        client = _clients.get(key)
        if client is not None and client.alive:
            return client
        connecting = _connecting.setdefault(key, threading.Lock())
    with connecting:
        with _clients_lock:
            client = _clients.get(key)
            if client is not None and client.alive:
                return client
            failed = _failures.get(key)
            if failed is not None and failed[0] >= asked:
                raise type(failed[1])(str(failed[1])) from failed[1]
        client = _Client(SmbLocation(loc.host, loc.port, loc.share), creds, timeout)
        try:
            client.connect(give_up)
        except SourceError as exc:
            client.drop()
            with _clients_lock:
                _failures[key] = (time.monotonic(), exc)
            raise
        with _clients_lock:
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


def _retrying(
    loc: SmbLocation,
    creds: SmbCredentials,
    timeout: float,
    op: Callable[[_Client], Any],
    wait: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Run `op` on a live connection. A network error is retried up to RETRIES times, over a new connection,
    after an exponential, jittered pause; all the retries of one operation share `timeout` seconds, so a
    NAS that stopped answering ends the operation within about twice the timeout. Raises SourceError when
    the NAS cannot be connected again, and _Offline when requests kept failing on connections that did come
    up."""
    failures = 0
    give_up_at = None
    while True:
        client = None
        try:
            left = GIVE_UP_S if give_up_at is None else max(0.5, give_up_at - clock())
            client = _client_for(loc, creds, timeout, min(GIVE_UP_S, left))
            return op(client)
        except (SourceUnreachable, _Offline) as exc:
            if client is not None:
                _discard(client)
            failures += 1
            if give_up_at is None:
                give_up_at = clock() + timeout
            pause = BACKOFF_S * 2 ** (failures - 1) * random.uniform(0.5, 1.5)
            if failures > RETRIES or clock() + pause >= give_up_at:
                raise
            log.warning("NAS %s: %s; retry %d of %d", loc.server, _first_sentence(exc), failures, RETRIES)
            wait(pause)


def _first_sentence(exc: BaseException) -> str:
    return str(exc).split(". ")[0].rstrip(".")
