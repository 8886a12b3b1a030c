"""SMB2 requests built and answered as bytes on a connection that smbprotocol opened.

smbprotocol does the handshake: negotiate, login (NTLM or Kerberos through pyspnego), key derivation,
tree connects, echoes. Every folder listing and header read after that is a compound of three or four
messages, and smbprotocol spends about 1 ms of Python a compound building and parsing its generic
`Structure` objects (header, body, transform header, each field an object), three quarters of the CPU
of a walk over SMB. `Wire` sends those compounds as bytes packed with `struct` and takes their replies
off the connection before smbprotocol's receiving thread would parse them: it is installed as the
connection's transport and hands every packet that answers one of its own requests to the waiting
caller, and every other packet (handshake, tree connect, echo) to smbprotocol as before.

What smbprotocol does for its own messages is done here too, by the same rules: message ids and credits
from the connection's sequence window under its lock; signing with the session's key
(`Connection._generate_signature`) when the session signs; SMB3 encryption (AES-CCM or AES-GCM, the
cipher the connection negotiated) when the session or share encrypts; replies checked the same way, and
more strictly than smbprotocol checks its own: a reply that should be signed but is not, or that answers
an encrypted request in clear, is refused. A connection that fails or is closed wakes every
waiting request with the reason.
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Any

from cryptography.hazmat.primitives.ciphers import aead

CREATE, CLOSE, READ, QUERY_DIRECTORY = 0x05, 0x06, 0x08, 0x0E  # SMB2 commands (MS-SMB2 2.2.1)
_SIGNED, _RELATED, _ASYNC, _DFS = 0x08, 0x04, 0x02, 0x10000000  # header flags
_PENDING = 0x00000103  # STATUS_PENDING: an interim reply, the final one follows
_GCM = {0x0002, 0x0004}  # AES-128-GCM, AES-256-GCM; the other ciphers are AES-CCM
_SMB_3_1_1 = 0x0311
_CHUNK = 65536  # one credit pays for this much of a read or listing

_HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")  # SMB2 sync header, 64 bytes
_REPLY = struct.Struct("<IHHIIQ")  # status, command, credits granted, flags, next command, message id (at 8)
_TRANSFORM = struct.Struct("<4s16s16sIHHQ")  # SMB2 TRANSFORM_HEADER, 52 bytes
_CREATE = struct.Struct("<HBBIQQIIIIIHHII")  # SMB2 CREATE request up to its buffer, 56 bytes
_READ = struct.Struct("<HBBIQ16sIIIHHB")  # SMB2 READ request with its one-byte buffer, 49 bytes
_QUERY_DIRECTORY = struct.Struct("<HBBI16sHHI")  # SMB2 QUERY_DIRECTORY request up to its buffer, 32 bytes
_CLOSE = struct.Struct("<HHI16s")  # SMB2 CLOSE request, 24 bytes
_LENGTH = struct.Struct(">I")  # the Direct TCP frame: a zero byte and a 24-bit length
_REFUSED = "a reply from the NAS could not be decrypted or read (altered on the way?)"
RELATED_FILE = b"\xff" * 16  # the file id of a related compound: "the file the create before opened"

Message = tuple[int, bytes, int]  # command, body, credit charge


def _charge(payload: int) -> int:
    return (max(0, payload - 1) // _CHUNK) + 1


def create(name: str, access: int, attributes: int, share: int, disposition: int, options: int) -> Message:
    """CREATE (open) `name`, a path in the share with backslashes, impersonation level Impersonation."""
    path = name.encode("utf-16-le")
    fixed = _CREATE.pack(
        57, 0, 0, 2, 0, 0, access, attributes, share, disposition, options, 120, len(path), 0, 0
    )
    return CREATE, fixed + (path or b"\x00\x00"), 1  # an empty name: one UTF-16 NUL, as smbprotocol sends


def read(offset: int, length: int, file_id: bytes = RELATED_FILE) -> Message:
    return READ, _READ.pack(49, 0x50, 0, length, offset, file_id, 0, 0, 0, 0, 0, 0), _charge(length)


def query_directory(info_class: int, pattern: str = "*", file_id: bytes = RELATED_FILE) -> Message:
    """QUERY_DIRECTORY: the next entries matching `pattern`, up to 64 KiB of them."""
    name = pattern.encode("utf-16-le")
    fixed = _QUERY_DIRECTORY.pack(33, info_class, 0, 0, file_id, 96, len(name), _CHUNK)
    return QUERY_DIRECTORY, fixed + name, _charge(_CHUNK)


def close(file_id: bytes = RELATED_FILE) -> Message:
    return CLOSE, _CLOSE.pack(24, 0, 0, file_id), 1


class WireError(ConnectionError):
    """The connection failed, was closed, or answered with something that fails its checks."""


class Reply:
    """One request's answer, once it has come: its status, and its body (after the 64-byte header) when the
    status is success, else b''."""

    __slots__ = ("_done", "body", "failed", "sealed", "session", "status")

    def __init__(self, session: Any, sealed: bool = False) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.session, self.sealed = session, sealed  # sealed: sent encrypted, so the answer must be too
        self.status, self.body, self.failed = 0, b"", ""

    def _settle(self) -> None:
        self._done.release()

    def wait(self, timeout: float) -> tuple[int, bytes]:
        if not self._done.acquire(timeout=timeout):
            raise TimeoutError(f"no answer within {timeout:g} s (timeout)")
        self._done.release()  # a second wait returns at once
        if self.failed:
            raise WireError(self.failed)
        return self.status, self.body


class Wire:
    """The byte-level requests of one smbprotocol `Connection`. `Wire(conn)` after the handshake puts it in
    front of the connection's transport; attributes it does not have are the transport's."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.tcp = conn, conn.transport
        self.pending: dict[int, Reply] = {}
        self.dead = ""
        self.reading = threading.Event()  # set once smbprotocol's receiving thread reads through this Wire
        self._ciphers: dict[bytes, Any] = {}
        conn.transport = self

    def __getattr__(self, name: str) -> Any:  # connected, send, _sock_lock... of the Tcp transport
        return getattr(self.tcp, name)

    # -- sending -------------------------------------------------------------------------------------------

    def request(self, session: Any, tree: Any, messages: list[Message], related: bool = True) -> list[Reply]:
        """Send `messages` as one compound (related: each works on the file the first one opened)."""
        conn = self.conn
        sign = bool(session.signing_required and session.signing_key)
        sealed = bool(session.encrypt_data or tree.encrypt_data)
        flags = _DFS if tree.is_dfs_share else 0
        flags |= _SIGNED if sign else 0
        last = len(messages) - 1
        multi = conn.supports_multi_credit
        parts, replies = [], []
        for i, (command, body, charge) in enumerate(messages):
            charge = charge if multi else 0
            with conn.sequence_lock:
                window = conn.sequence_window
                if charge > window["high"] - window["low"]:
                    raise WireError(f"out of credits: {charge} needed, {window['high'] - window['low']} left")
                mid = window["low"]
                window["low"] += charge or 1
            size = 64 + len(body)
            pad = (-size) % 8 if i < last else 0
            header = _HEADER.pack(
                b"\xfeSMB",
                64,
                charge,
                0,
                command,
                charge,
                flags | (_RELATED if i and related else 0),
                size + pad if i < last else 0,
                mid,
                0,
                tree.tree_connect_id,
                session.session_id,
                b"",
            )
            message = header + body + b"\x00" * pad
            if sign:
                signature = conn._generate_signature(message, session.signing_key, mid, False, command)
                message = message[:48] + signature + message[64:]
            reply = Reply(session, sealed)
            self.pending[mid] = reply
            parts.append(message)
            replies.append(reply)
        data = b"".join(parts)
        if sealed:
            data = self._encrypt(data, session)
        if self.dead or not self.tcp.connected or conn._t_exc is not None:
            self._fail(self.dead or "the connection is closed")
            raise WireError(self.dead or "the connection is closed")
        with self.tcp._sock_lock:
            self.tcp._sock.sendall(_LENGTH.pack(len(data)) + data)
        return replies

    def _cipher(self, key: bytes) -> Any:
        cipher = self._ciphers.get(key)
        if cipher is None:
            gcm = self.conn.dialect >= _SMB_3_1_1 and self.conn.cipher_id in _GCM
            cipher = self._ciphers[key] = (aead.AESGCM if gcm else aead.AESCCM)(key)
        return cipher

    def _encrypt(self, data: bytes, session: Any) -> bytes:
        cipher = self._cipher(session.encryption_key)
        nonce = os.urandom(12 if isinstance(cipher, aead.AESGCM) else 11)
        aad = _TRANSFORM.pack(b"\xfdSMB", b"", nonce, len(data), 0, 1, session.session_id)[20:]
        sealed: bytes = cipher.encrypt(nonce, data, aad)
        return b"\xfdSMB" + sealed[-16:] + aad + sealed[:-16]

    # -- receiving: called by smbprotocol's receiving thread ----------------------------------------------

    def recv(self, timeout: Any) -> bytes:
        """The next packet that is not an answer to one of this Wire's requests (those are delivered here)."""
        self.reading.set()
        while True:
            try:
                packet: bytes = self.tcp.recv(timeout)
            except TimeoutError:
                raise  # smbprotocol sends a keep-alive echo
            except BaseException as exc:
                self._fail(f"connection lost ({type(exc).__name__})")
                raise
            if not packet:
                self._fail("the NAS closed the connection")
                return packet
            encrypted = packet[:4] == b"\xfdSMB"
            try:
                plain = self._decrypt(packet) if encrypted else packet
                if struct.unpack_from("<Q", plain, 24)[0] not in self.pending:
                    return packet  # smbprotocol's own request: it decrypts and parses it itself
                self._deliver(plain, encrypted)
            except Exception as exc:  # the waiting requests learn why the connection ends
                self._fail(str(exc) if isinstance(exc, WireError) else _REFUSED)
                raise

    def _decrypt(self, packet: bytes) -> bytes:
        _, signature, nonce, _, _, flags, session_id = _TRANSFORM.unpack_from(packet)
        session = self.conn.session_table.get(session_id)
        if flags != 1 or session is None or session.decryption_key is None:
            raise WireError("the NAS sent an encrypted message this connection cannot read")
        cipher = self._cipher(session.decryption_key)
        nonce = nonce[: 12 if isinstance(cipher, aead.AESGCM) else 11]
        plain: bytes = cipher.decrypt(nonce, packet[52:] + signature, packet[20:52])
        return plain

    def _deliver(self, plain: bytes, encrypted: bool) -> None:
        conn, off = self.conn, 0
        while True:
            status, command, credits, flags, nxt, mid = _REPLY.unpack_from(plain, off + 8)
            message = plain[off : off + nxt] if nxt else plain[off:]
            off += nxt
            reply = self.pending.get(mid)
            if reply is None:
                raise WireError(f"the NAS answered message {mid}, which was not asked in this compound")
            if reply.sealed and not encrypted:  # what an attacker on the way could write in clear
                raise WireError("the NAS answered an encrypted request with a reply that is not encrypted")
            if not encrypted and reply.session.signing_required and status != _PENDING:
                if not flags & _SIGNED:
                    raise WireError("the NAS sent an unsigned reply on a signed session")
                key = reply.session.signing_key
                if conn._generate_signature(message, key, mid, True, command) != message[48:64]:
                    raise WireError("a reply from the NAS failed its signature check")
            if credits == 0 and not conn.supports_multi_credit:
                credits = 1
            with conn.sequence_lock:
                conn.sequence_window["high"] += credits
            if not (status == _PENDING and flags & _ASYNC):  # an interim reply: the final one follows
                self.pending.pop(mid, None)
                reply.status, reply.body = status, (message[64:] if status == 0 else b"")
                reply._settle()
            if not nxt:
                return

    def close(self) -> None:
        self.tcp.close()
        self._fail("the connection was closed")

    def _fail(self, reason: str) -> None:
        self.dead = self.dead or reason
        for mid in list(self.pending):
            reply = self.pending.pop(mid, None)
            if reply is not None:
                reply.failed = self.dead
                reply._settle()
