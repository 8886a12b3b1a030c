"""The NAS disappears during a share download, a WADO-RS retrieval and an Orthanc send (issue 14,
point 5b): the archive is indexed over SMB through a relay, the relay is cut while the answer is being sent,
and each transfer ends short with one clear logged line, frees its place, and nothing is recorded as complete
that was not (the access log says incomplete; the multipart body has no closing boundary; the send is not
whole)."""

from __future__ import annotations

import gc
import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import orthanc_server
from conftest import write_dicom
from hardening_kit import PASSWORD, live_server, press_download
from pacsindex.errors import SourceUnreachable
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.orthanc.client import Connection, OrthancClient, SendProgress, send_series
from pacsindex.sources.files import source_for
from pacsindex.sources.smb import reader as smb
from samba_server import SambaServer, TcpProxy, samba_fixture  # noqa: F401  (the "samba" fixture)
from support_wait import wait_until

# When the NAS vanishes mid-transfer, smbprotocol's connection to it is dropped, and its socket is closed
# only by the garbage collector: a ResourceWarning that would land on whichever later test runs then.
# It is collected here, where it belongs, and accepted in this module only (see the closing note: the SMB
# client should close that socket itself).
pytestmark = [
    pytest.mark.samba,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(autouse=True)
def collect_dropped_connections() -> Iterator[None]:
    yield
    gc.collect()


STUDY, SERIES = "1.2.826.0.1.3680043.2.5", "1.2.826.0.1.3680043.2.5.1"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name} {record.getMessage()}")


@pytest.fixture
def world(samba: SambaServer, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """24 files of 512 KiB on the NAS, indexed over SMB through a relay; the service serving them."""
    smb.close_connections()
    folder = samba.shares["archive"] / tmp_path.name
    for i in range(24):
        write_dicom(
            folder / f"IM{i:03d}.dcm",
            StudyInstanceUID=STUDY,
            SeriesInstanceUID=SERIES,
            InstanceNumber=i + 1,
            rows=512,
        )
    relay = TcpProxy(samba.port)
    url = samba.url("archive", tmp_path.name, port=relay.port)
    nas = {"smb_user": samba.user, "smb_password": samba.password, "smb_connect_timeout": 2}
    db = tmp_path / "index.db"
    run_index(db, [source_for(url, smb.SmbCredentials(samba.user, samba.password))], ScanOptions(workers=1))
    lines, root = Lines(), logging.getLogger()
    root.addHandler(lines)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        with live_server(db, **nas) as (server, app):
            yield {"url": server.url, "app": app, "relay": relay, "lines": lines}
    finally:
        root.removeHandler(lines)
        root.setLevel(old)
        relay.close()
        smb.close_connections()


def slow_get(base: str, target: str, headers: dict[str, str]) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect((host, int(port)))
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    finally:
        sock.close()
    return data


def test_a_share_download_ends_short_and_incomplete_when_the_nas_goes(world: dict[str, Any]) -> None:
    url, app, relay = world["url"], world["app"], world["relay"]
    with httpx.Client(base_url=url) as c:
        me = c.post("/auth/signin", json={"name": "alice", "password": PASSWORD}).json()
        key = c.get("/api/search", params={"q": ""}).json()[0]["SeriesKey"]
        made = c.post(
            "/api/shares", json={"SeriesKey": key}, headers={"X-CSRF-Token": me["csrf_token"]}
        ).json()
        sock = slow_get(url, press_download(url, made["token"]), {})
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        size = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        relay.close()  # the NAS is gone: no connection, old or new
        body = read_all(sock)
        assert len(body) < size  # the zip stopped short ...
        limiter = app.state.sharing.limiter
        wait_until(lambda: limiter.active == 0)  # ... its place is free ...

        def zips() -> list[dict[str, Any]]:
            return [e for e in c.get(f"/api/shares/{made['id']}/log").json() if e["kind"] == "zip"]

        # The end is recorded once the stream has logged why it stopped.
        wait_until(lambda: any("share download stopped" in line for line in world["lines"].lines))
        assert zips()[0]["outcome"] == "incomplete"  # ... and it is not counted as whole
    assert any("share download stopped" in line for line in world["lines"].lines)


def test_a_wado_retrieval_ends_short_when_the_nas_goes(world: dict[str, Any]) -> None:
    url, app, relay = world["url"], world["app"], world["relay"]
    _, token = app.state.apitokens.create("viewer", "alice")
    headers = {"Authorization": f"Bearer {token}", "Accept": "multipart/related; type=application/dicom"}
    sock = slow_get(url, f"/dicom-web/studies/{STUDY}/series/{SERIES}", headers)
    head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    boundary = head.split(b"boundary=", 1)[1].split(b"\r\n", 1)[0].strip(b'"')
    relay.close()
    body = head + read_all(sock)
    assert b"--" + boundary + b"--" not in body  # no closing boundary: the client knows it is incomplete
    wait_until(lambda: app.state.dicomweb_streams.active == 0)
    assert any("DICOMweb retrieval stopped" in line and "NAS" in line for line in world["lines"].lines)


@pytest.mark.orthanc
def test_an_orthanc_send_stops_with_a_clear_error_when_the_nas_goes(
    samba: SambaServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    problem = orthanc_server.orthanc_problem()
    if problem:
        pytest.skip(problem)
    orthanc = orthanc_server.start_orthanc(tmp_path / "orthanc")
    request.addfinalizer(orthanc.stop)
    smb.close_connections()
    folder = samba.shares["archive"] / tmp_path.name
    for i in range(12):
        write_dicom(
            folder / f"IM{i:03d}.dcm",
            StudyInstanceUID=STUDY + ".7",
            SeriesInstanceUID=SERIES + ".7",
            InstanceNumber=i + 1,
        )
    relay = TcpProxy(samba.port)
    creds = smb.SmbCredentials(samba.user, samba.password)
    url = samba.url("archive", tmp_path.name, port=relay.port)
    db = tmp_path / "index.db"
    run_index(db, [source_for(url, creds)], ScanOptions(workers=1))
    conn = sqlite3.connect(db)
    [(key,)] = conn.execute("SELECT SeriesKey FROM series").fetchall()
    conn.close()
    seen: list[SendProgress] = []

    def on_progress(p: SendProgress) -> None:
        seen.append(p)
        if p.sent == 3:
            relay.close()  # the NAS goes after three files

    settings = {"user": samba.user, "password": samba.password, "connect_timeout": 2}
    try:
        with OrthancClient(Connection(orthanc.url, orthanc.user, orthanc.password)) as client:
            with pytest.raises(SourceUnreachable, match="NAS"):
                send_series(db, key, client, on_progress=on_progress, settings=settings)
    finally:
        relay.close()
        smb.close_connections()
    assert seen[-1].done < seen[-1].total  # not reported as whole ...
    stored = orthanc.request("GET", "/instances") or []
    assert 3 <= len(stored) < 12  # ... and Orthanc has only what was really sent
