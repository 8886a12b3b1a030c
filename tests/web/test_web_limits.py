"""Limits that cannot be starved (issue 14, point 3), over a real socket: `dicomweb_max_streams` caps
concurrent DICOMweb retrievals with 429 + Retry-After and frees a place when a client hangs up; a disabled
admin's API tokens stop working; `max_request_bytes` bounds every request body, declared or streamed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import write_dicom
from hardening_kit import PASSWORD, live_server
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from support_wait import wait_until

STUDY, SERIES = "1.2.826.0.1.3680043.2.1", "1.2.826.0.1.3680043.2.1.1"


@pytest.fixture(scope="module")
def big_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One series of 24 files of 512 KiB: far more than the socket buffers hold, so a client that does not
    read keeps its retrieval open."""
    base = tmp_path_factory.mktemp("limits")
    for i in range(24):
        write_dicom(
            base / "archive" / f"IM{i:03d}.dcm",
            StudyInstanceUID=STUDY,
            SeriesInstanceUID=SERIES,
            InstanceNumber=i + 1,
            rows=512,
        )
    run_index(base / "index.db", [LocalTree(str(base / "archive"))], ScanOptions(workers=1))
    return base / "index.db"


@pytest.fixture
def db(big_series: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index.db"
    target.write_bytes(big_series.read_bytes())
    return target


def slow_reader(url: str, path: str, token: str) -> socket.socket:
    """A client with a tiny receive window that asks for `path` and then stops reading."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    target = path.removeprefix(url)
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: multipart/related; type=application/dicom\r\n\r\n".encode()
    )
    return sock


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "multipart/related; type=application/dicom"}


@pytest.fixture
def served(db: Path) -> Iterator[tuple[str, object, str]]:
    with live_server(db, dicomweb_max_streams=2, max_request_bytes=4096) as (server, app):
        _, token = app.state.apitokens.create("viewer", "alice")
        yield server.url, app, token


def test_retrievals_past_the_cap_get_429_and_a_hang_up_frees_a_place(served: tuple[str, object, str]) -> None:
    url, app, token = served
    limiter = app.state.dicomweb_streams  # type: ignore[attr-defined]
    path = f"{url}/dicom-web/studies/{STUDY}/series/{SERIES}"
    held = [slow_reader(url, path, token) for _ in range(2)]
    try:
        for sock in held:  # each has its answer's first bytes and reads no more
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
        wait_until(lambda: limiter.active == 2)
        third = httpx.get(path, headers=bearer(token))
        assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
        assert "retrievals" in third.json()["detail"]
        # A viewer's frame and bulk data requests open files on the NAS too: the same cap holds them.
        instances = httpx.get(f"{path}/instances", headers={"Authorization": f"Bearer {token}"}).json()
        sop = instances[0]["00080018"]["Value"][0]
        octets = {
            "Authorization": f"Bearer {token}",
            "Accept": "multipart/related; type=application/octet-stream",
        }
        frames = httpx.get(f"{path}/instances/{sop}/frames/1", headers=octets)
        bulk = httpx.get(f"{path}/instances/{sop}/bulkdata/7fe00010", headers=octets)
        assert frames.status_code == 429 and bulk.status_code == 429
        # Search is not a retrieval: it still answers while the cap is reached.
        assert (
            httpx.get(f"{url}/dicom-web/studies", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )
        held[0].close()  # one client hangs up: its place is freed
        wait_until(lambda: limiter.active < 2)
        whole = httpx.get(path, headers=bearer(token), timeout=60)
        assert whole.status_code == 200 and len(whole.content) > 24 * 512 * 512
        frame = httpx.get(f"{path}/instances/{sop}/frames/1", headers=octets, timeout=60)
        assert frame.status_code == 200 and len(frame.content) >= 512 * 512
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: limiter.active == 0)


def test_a_disabled_admins_tokens_stop_working(served: tuple[str, object, str]) -> None:
    url, app, token = served
    accounts = app.state.pacsindex.accounts  # type: ignore[attr-defined]
    studies = f"{url}/dicom-web/studies"
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(studies, headers=auth).status_code == 200
    accounts.add_user("carol", PASSWORD, admin=True)  # so alice is not the last admin
    accounts.update_user("alice", disabled=True)
    refused = httpx.get(studies, headers=auth)
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    assert "WWW-Authenticate" in refused.headers
    accounts.update_user("alice", disabled=False, admin=False)  # back, but no longer an admin
    assert httpx.get(studies, headers=auth).status_code == 401
    accounts.update_user("alice", admin=True)
    assert httpx.get(studies, headers=auth).status_code == 200


def test_request_bodies_are_bounded_declared_or_streamed(served: tuple[str, object, str]) -> None:
    url, _app, _token = served
    big = {"name": "alice", "password": "x" * 8000}
    declared = httpx.post(f"{url}/auth/signin", json=big)
    assert declared.status_code == 413 and "max_request_bytes" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"name": "alice", "password": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    streamed = httpx.post(
        f"{url}/auth/signin", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    for path in ("/api/shares", "/share/anything", "/api/settings/nas"):
        assert httpx.post(url + path, content=b"z" * 5000).status_code == 413
    # A normal body is untouched by the limit.
    assert httpx.post(f"{url}/auth/signin", json={"name": "alice", "password": PASSWORD}).status_code == 200


def test_a_metadata_request_that_fails_before_answering_frees_its_place(
    served: tuple[str, object, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app, token = served
    limiter = app.state.dicomweb_streams  # type: ignore[attr-defined]
    audit = app.state.pacsindex.audit  # type: ignore[attr-defined]
    path = f"{url}/dicom-web/studies/{STUDY}/metadata"
    auth = {"Authorization": f"Bearer {token}"}

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit, "record", disk_full)  # the audit log cannot be written: no answer goes out
    for _ in range(3):  # more failures than places: each one gave its place back
        assert httpx.get(path, headers=auth).status_code >= 500
    assert limiter.active == 0
    monkeypatch.undo()
    answer = httpx.get(path, headers=auth, timeout=60)
    assert answer.status_code == 200 and len(answer.json()) == 24
