"""Helpers for the hardening tests (issue 14): a live server on a small sample index, a password hasher
that counts its checks, raw HTTP requests with paths no client library would normalise, and a deadline
poll."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

PASSWORD = "correct horse battery"


class CountingHasher(PasswordHasher):
    """A real argon2 hasher, slow enough that parallel checks overlap, that counts its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=16384, parallelism=1)
        self.verified = 0
        self.active = self.peak = 0  # checks running now, and the most at once
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002  (argon2's name)
        with self._lock:
            self.verified += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.active -= 1


def sample_index(base: Path, patients: int = 4, files: int = 60) -> Path:
    write_sample(base / "archive", patients=patients, files=files)
    db = base / "index.db"
    run_index(db, [LocalTree(str(base / "archive"))], ScanOptions(workers=1))
    return db


@contextmanager
def live_server(db: Path, hasher: PasswordHasher | None = None, **overrides: Any) -> Iterator[Any]:
    """`(server, app)` serving the index at `db` on a free port, with an admin `alice` and staff `bob`."""
    settings = Settings(db=db, workers=1).with_overrides(**overrides)
    app = create_app(settings, hasher=hasher or PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts = app.state.pacsindex.accounts
    for name, admin in (("alice", True), ("bob", False)):
        try:
            accounts.add_user(name, PASSWORD, admin=admin)
        except Exception:
            pass  # a copied index may hold them already
    with ThreadedServer(app, settings) as server:
        yield server, app


def raw_get(port: int, target: str, host: str = "127.0.0.1") -> int:
    """Send `GET target` byte for byte (no client normalises it) and return the status code."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def press_download(url: str, token: str) -> str:
    """What a recipient's Download button does: POST, which reserves a download and answers with the
    zip's address (a ticket). Returns that path."""
    import httpx

    r = httpx.post(f"{url}/share/{token}/download", follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])
