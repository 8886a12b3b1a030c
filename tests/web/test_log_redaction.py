"""Tokens never in logs (issue 14, point 2): a share token sent over a real socket in any spelling
(`//share/T`, `/share//T`, `/Share/T`, `/api/../share/T`, percent-encoded) is redacted in the server's
request lines, and in uvicorn's own access log when a deployment turns it on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from hardening_kit import PASSWORD, live_server, raw_get, sample_index
from pacsindex.web.logredact import redact_path
from support_wait import wait_until

SPELLINGS = (
    "/share/{t}",
    "//share/{t}",
    "/share//{t}",
    "/Share/{t}",
    "/SHARE/{t}/download",
    "/api/../share/{t}",
    "/static/..%2F..%2Fshare/{t}",
    "/%73hare/{t}",
    "/share%2F{t}",
    "/share/{t}?download=1",
)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.lines.append(f"{record.name} {record.getMessage()}")

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_index(tmp_path_factory.mktemp("redact"))


def make_share(url: str) -> str:
    """A real share link's token, made by a signed-in staff member."""
    with httpx.Client(base_url=url) as c:
        me = c.post("/auth/signin", json={"name": "alice", "password": PASSWORD}).json()
        key = c.get("/api/search", params={"q": ""}).json()[0]["SeriesKey"]
        made = c.post("/api/shares", json={"SeriesKey": key}, headers={"X-CSRF-Token": me["csrf_token"]})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])


def test_every_spelling_of_a_share_path_is_redacted_on_the_wire(
    db: Path, tmp_path: Path, captured: Captured
) -> None:
    copy = tmp_path / "index.db"
    copy.write_bytes(db.read_bytes())
    with live_server(copy) as (server, _app):
        token = make_share(server.url)
        port = server.port
        statuses = {s: raw_get(port, s.format(t=token)) for s in SPELLINGS}
        assert statuses["/share/{t}"] == 200  # the real link works ...
        wait_until(lambda: captured.text.count("/share/…") >= len(SPELLINGS))
    text = captured.text
    assert token not in text and token[:16] not in text  # ... and no spelling leaks the token
    assert token.lower() not in text.lower()
    assert "/share/…" in text


def test_uvicorns_own_access_log_is_redacted_when_turned_on(
    db: Path, tmp_path: Path, captured: Captured
) -> None:
    copy = tmp_path / "index.db"
    copy.write_bytes(db.read_bytes())
    with live_server(copy) as (server, app):
        token = make_share(server.url)
    # The same app under a uvicorn that writes its own access log (a deployment's choice).
    config = uvicorn.Config(app, host="127.0.0.1", port=0, access_log=True, log_config=None, lifespan="off")
    own = uvicorn.Server(config)
    access_logger = logging.getLogger("uvicorn.access")
    access_logger.addHandler(captured)  # an earlier access_log=False config stopped its propagation
    thread = threading.Thread(target=own.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: own.started)
        port = own.servers[0].sockets[0].getsockname()[1]
        for spelling in SPELLINGS:
            raw_get(port, spelling.format(t=token))
        raw_get(port, "/api/search?q=M%C3%BCller")
        wait_until(lambda: captured.text.count("uvicorn.access") >= len(SPELLINGS) + 1)
    finally:
        own.should_exit = True
        thread.join(30)
        access_logger.removeHandler(captured)
    access = "\n".join(line for line in captured.lines if line.startswith("uvicorn.access"))
    assert token not in captured.text
    assert "/share/…" in access
    assert "ller" not in access and "q=" not in access  # what was searched for stays out too


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_redact_path_names_no_token(spelling: str) -> None:
    token = "Zx9" * 14
    assert token not in redact_path(spelling.format(t=token).split("?")[0])


def test_other_paths_are_left_alone() -> None:
    for path in ("/api/search", "/share/create", "/static/app.js", "/dicom-web/studies"):
        assert redact_path(path) == path
