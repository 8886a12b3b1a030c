"""What the operations tests share: a live service (uvicorn over a real socket) with an admin and a staff
member signed in, a small archive, and a wait with a deadline."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def add_study(root: Path, name: str, pid: str, uid: str, n: int = 2, date: str = "20261207") -> None:
    for i in range(n):
        write_dicom(
            root / uid / f"IM{i}.dcm",
            PatientName=name,
            PatientID=pid,
            StudyInstanceUID=uid,
            SeriesInstanceUID=uid + ".1",
            InstanceNumber=i + 1,
            StudyDate=date,
        )


def count(db: Path, sql: str, *params: Any) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


@dataclass
class Live:
    url: str
    app: Any
    settings: Settings
    admin: httpx.Client
    admin_csrf: dict[str, str]
    staff: httpx.Client
    staff_csrf: dict[str, str]

    def anon(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


def sign_in(url: str, name: str) -> tuple[httpx.Client, dict[str, str]]:
    client = httpx.Client(base_url=url, timeout=60)
    r = client.post("/auth/signin", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client, {"X-CSRF-Token": r.json()["csrf_token"]}


@contextmanager
def live_service(base: Path, **overrides: Any) -> Iterator[Live]:
    """The web service on the index at base/pacsindex.db, with accounts `admin` and `sipho`."""
    settings = Settings(db=base / "pacsindex.db", workers=1, **overrides)
    app = create_app(settings, hasher=FAST)
    accounts = app.state.pacsindex.accounts
    if not accounts.list_users():
        accounts.add_user("admin", PASSWORD, admin=True)
        accounts.add_user("sipho", PASSWORD)
    with ThreadedServer(app, settings) as server:
        admin, admin_csrf = sign_in(server.url, "admin")
        staff, staff_csrf = sign_in(server.url, "sipho")
        try:
            yield Live(server.url, app, settings, admin, admin_csrf, staff, staff_csrf)
        finally:
            admin.close()
            staff.close()
