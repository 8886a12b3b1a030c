"""Sends to Orthanc survive a restart, against a real Orthanc: a send the service's shutdown stopped after
three files is kept in the index as interrupted (audited as stopped), the next start resumes it, and it
finishes with every instance in Orthanc and none uploaded twice (each upload counted on its way to Orthanc
by a small proxy). A send a user cancels stops, stays cancelled, and is not resumed."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from conftest import write_dicom
from orthanc_server import OrthancServer, orthanc_fixture  # noqa: F401 - the `orthanc` fixture
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.orthanc import client as orthanc_client
from pacsindex.orthanc.sends import SendJob
from pacsindex.sources.files import source_for
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer
from support_wait import wait_until

pytestmark = pytest.mark.orthanc

PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FILES = 8


class CountingProxy:
    """Forwards every request to Orthanc and counts each `POST /instances` body by its SHA-256."""

    def __init__(self, target: str) -> None:
        self.uploads: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "POST" and self.path == "/instances":
                    proxy.uploads[hashlib.sha256(body).hexdigest()] += 1
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")
                }
                r = httpx.request(self.command, target + self.path, headers=headers, content=body, timeout=60)
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def setup(tmp_path: Path, orthanc: OrthancServer) -> Iterator[tuple[Settings, CountingProxy, str]]:  # noqa: F811
    orthanc.clear()
    uid = "1.2.826.99.13." + str(int(time.time() * 1000) % 10**9)
    for i in range(FILES):
        write_dicom(
            tmp_path / "archive" / f"IM{i}.dcm",
            PatientName="MOKOENA^LERATO",
            PatientID="PID-13",
            StudyInstanceUID=uid,
            SeriesInstanceUID=uid + ".1",
            InstanceNumber=i + 1,
        )
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1)
    run_index(settings.db, [source_for(str(tmp_path / "archive"))], ScanOptions(workers=1))
    with CountingProxy(orthanc.url) as proxy:
        orthanc_client.save_connection(
            settings.data_path, url=proxy.url, user=orthanc.user, password=orthanc.password
        )
        yield settings, proxy, uid + ".1"


def serve(settings: Settings, pause_at: int | None = None) -> tuple[Any, ThreadedServer, threading.Event]:
    """The service; with `pause_at`, each send holds after that many files until it is told to stop."""
    app = create_app(settings, hasher=FAST)
    if not app.state.pacsindex.accounts.list_users():
        app.state.pacsindex.accounts.add_user("sipho", PASSWORD)
    paused = threading.Event()

    def hold(job: SendJob) -> None:
        if job.progress is not None and job.progress.done == pause_at and not paused.is_set():
            paused.set()
            job.cancel.wait(60)

    if pause_at is not None:
        app.state.orthanc_sends.on_progress = hold
    return app, ThreadedServer(app, settings), paused


def signed_in(url: str) -> tuple[httpx.Client, dict[str, str]]:
    client = httpx.Client(base_url=url, timeout=60)
    r = client.post("/auth/signin", json={"name": "sipho", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client, {"X-CSRF-Token": r.json()["csrf_token"]}


def series_key(client: httpx.Client) -> str:
    return str(client.get("/api/search", params={"q": "mokoena"}).json()[0]["SeriesKey"])


def test_a_send_stopped_by_a_restart_finishes_afterwards_with_nothing_sent_twice(
    setup: tuple[Settings, CountingProxy, str],
    orthanc: OrthancServer,  # noqa: F811
) -> None:
    settings, proxy, series_uid = setup
    app, server, paused = serve(settings, pause_at=3)
    with server:
        client, csrf = signed_in(server.url)
        started = client.post("/api/orthanc/sends", json={"SeriesKey": series_key(client)}, headers=csrf)
        assert started.status_code == 202, started.text
        send_id = started.json()["id"]
        assert paused.wait(60)
        client.close()
    # The service has stopped: the send stopped between files, kept as interrupted.
    stopped = app.state.orthanc_sends.get(send_id)
    assert (stopped["state"], stopped["done"], stopped["sent"]) == ("interrupted", 3, 3)
    assert sum(proxy.uploads.values()) == 3
    app.state.pacsindex.audit.flush(10)

    app2, server2, _ = serve(settings)
    with server2:
        client, _csrf = signed_in(server2.url)
        done = wait_until(
            lambda: (s := client.get(f"/api/orthanc/sends/{send_id}").json())["state"] != "running" and s
        )
        assert (done["state"], done["done"], done["sent"], done["skipped"], done["failed"]) == (
            "completed",
            FILES,
            FILES,
            0,
            0,
        )

        def states() -> list[str]:
            return [
                e["detail"]["state"]
                for e in reversed(app2.state.pacsindex.audit.entries(action="orthanc_send"))
                if e["detail"]["send"] == send_id
            ]

        # the "completed" entry is written just after the send's state changes: wait for it
        wait_until(lambda: "completed" in states(), what="the send's completion in the audit log")
        client.close()
    assert states() == ["started", "stopped", "resumed", "completed"]
    assert len(proxy.uploads) == FILES and set(proxy.uploads.values()) == {1}  # each instance once
    held = {
        str(orthanc.get(f"/instances/{i}/simplified-tags")["SeriesInstanceUID"])
        for i in orthanc.get("/instances")
    }
    assert held == {series_uid} and len(orthanc.get("/instances")) == FILES


def test_a_cancelled_send_stops_and_is_not_resumed(
    setup: tuple[Settings, CountingProxy, str],
) -> None:
    settings, proxy, _ = setup
    app, server, paused = serve(settings, pause_at=2)
    with server:
        client, csrf = signed_in(server.url)
        send_id = client.post(
            "/api/orthanc/sends", json={"SeriesKey": series_key(client)}, headers=csrf
        ).json()["id"]
        assert paused.wait(60)
        r = client.post(f"/api/orthanc/sends/{send_id}/cancel", headers=csrf)
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["done"]) == ("cancelled", 2)
        again = client.post(f"/api/orthanc/sends/{send_id}/cancel", headers=csrf)
        assert again.status_code == 409
        listed = client.get("/api/orthanc/sends").json()
        assert [s["id"] for s in listed] == [send_id]
        client.close()
    app2, server2, _ = serve(settings)
    with server2:
        assert app2.state.orthanc_sends.get(send_id)["state"] == "cancelled"
    assert sum(proxy.uploads.values()) == 2
