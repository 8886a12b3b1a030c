"""Share links over a real socket (uvicorn in a thread, httpx as staff and as recipient): the zip a
recipient downloads holds the series byte for byte; expiry, revocation, passcodes with lockout and the
download limit answer with clear pages; guessed tokens and path tricks get nothing; the stream limit
answers 429 while the rest of the service keeps answering; every use is in the access and audit logs;
tokens never reach the server log."""

from __future__ import annotations

import hashlib
import logging
import secrets
import socket
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import pytest

from pacsindex.config.settings import Settings
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.share.download import CHUNK
from pacsindex.share.limits import StreamLimiter
from pacsindex.sources.files import LocalReader, LocalTree
from support_wait import wait_until
from support_web import LiveServer


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Live:
    url: str
    app: Any
    clock: Clock
    settings: Settings
    staff: httpx.Client
    csrf: dict[str, str]
    other: httpx.Client
    other_csrf: dict[str, str]
    admin: httpx.Client
    admin_csrf: dict[str, str]
    series: dict[str, Any]  # the series with the most files

    def share(self, **body: Any) -> dict[str, Any]:
        r = self.staff.post(
            "/api/shares", json={"SeriesKey": self.series["SeriesKey"], **body}, headers=self.csrf
        )
        assert r.status_code == 201, r.text
        return r.json()

    def recipient(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


def press_download(anon: httpx.Client, token: str, **data: str) -> httpx.Response:
    """The Download button: a POST that reserves a download and redirects to the zip's address."""
    return anon.post(f"/share/{token}/download", data=data)


def download(anon: httpx.Client, token: str, **data: str) -> httpx.Response:
    """Press Download and fetch the zip it leads to (or the refusal)."""
    pressed = press_download(anon, token, **data)
    if pressed.status_code != 303:
        return pressed
    return anon.get(pressed.headers["location"])


@pytest.fixture(scope="module")
def live(live_server: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory) -> Live:
    base = tmp_path_factory.mktemp("web-sharing")
    write_sample(base / "archive", patients=4, files=150)
    settings = Settings(db=base / "pacsindex.db", roots=(str(base / "archive"),), workers=1)
    run_index(settings.db, [LocalTree(str(base / "archive"))], ScanOptions(workers=1))
    clock = Clock()
    users = {"thandi": False, "sipho": False, "boss": True}
    server = live_server(settings=settings, clock=clock, users=users)
    staff, csrf = server.sign_in("thandi")
    other, other_csrf = server.sign_in("sipho")
    admin, admin_csrf = server.sign_in("boss")
    found = staff.get("/api/search", params={"limit": 1000}).json()
    series = max(found, key=lambda s: s["file_count"])
    return Live(
        server.url, server.app, clock, settings, staff, csrf, other, other_csrf, admin, admin_csrf, series
    )


def source_files(live: Live) -> list[dict[str, Any]]:
    with store.reading(live.settings.db) as conn:
        detail = store.get_series(conn, live.series["SeriesKey"])
        assert detail is not None
        return list(store.series_files(conn, detail["series_id"]))


def check_zip(live: Live, data: bytes, tmp_path: Path) -> None:
    """The zip holds file_count DICOM files equal to the sources, and passes testzip and `unzip -t`."""
    out = tmp_path / f"share-{secrets.token_hex(4)}.zip"
    out.write_bytes(data)
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        dicoms = [i for i in zf.infolist() if i.filename.startswith("DICOM/")]
        assert len(dicoms) == live.series["file_count"]
        assert [i.filename for i in zf.infolist()][:3] == ["README.txt", "MANIFEST.txt", "DICOMDIR"]
        for info, source in zip(dicoms, source_files(live), strict=True):
            got = hashlib.sha256(zf.read(info)).hexdigest()
            assert got == hashlib.sha256(Path(source["path"]).read_bytes()).hexdigest()
    proc = subprocess.run(["unzip", "-t", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "No errors detected" in proc.stdout, proc.stdout


def test_a_recipient_downloads_the_series_as_a_zip(live: Live, tmp_path: Path) -> None:
    made = live.share()
    assert made["url"] == f"{live.url}/share/{made['token']}" and made["status"] == "active"
    assert (
        made["file_count"] == live.series["file_count"] and made["PatientName"] == live.series["PatientName"]
    )
    with live.recipient() as anon:
        landing = anon.get(f"/share/{made['token']}")
        assert landing.status_code == 200 and landing.headers["cache-control"] == "no-store"
        assert f"<dd id='share-file-count'>{live.series['file_count']}</dd>" in landing.text
        assert live.series["Modality"] in landing.text
        assert live.series["PatientName"].split("^")[0] not in landing.text  # no patient name on the page
        r = download(anon, made["token"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert int(r.headers["content-length"]) == len(r.content)
    assert (
        r.headers["content-disposition"].startswith('attachment; filename="')
        and r.headers["cache-control"] == "no-store"
    )
    check_zip(live, r.content, tmp_path)
    log = live.staff.get(f"/api/shares/{made['id']}/log").json()
    assert [(e["kind"], e["outcome"]) for e in log] == [("zip", "ok"), ("download", "ok"), ("page", "ok")]
    assert log[0]["bytes_sent"] == len(r.content) and log[0]["client"] == "127.0.0.1"
    listed = {s["id"]: s for s in live.staff.get("/api/shares").json()}
    assert listed[made["id"]]["downloads"] == 1 and "token" not in listed[made["id"]]


def test_per_file_urls_work_for_their_link_only(live: Live) -> None:
    made, other = live.share(), live.share()
    with live.recipient() as anon:
        files = anon.get(f"/share/{made['token']}/files", headers={"Accept": "application/json"}).json()[
            "files"
        ]
        assert len(files) == live.series["file_count"]
        sources = source_files(live)
        for entry in (files[0], files[-1]):
            assert entry["url"] == f"/share/{made['token']}/files/{entry['n']}"
            r = anon.get(entry["url"])
            assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
            assert r.content == Path(sources[entry["n"] - 1]["path"]).read_bytes()
            assert r.headers["content-disposition"] == f'attachment; filename="{entry["name"]}"'
        page = anon.get(f"/share/{made['token']}/files")
        assert page.status_code == 200 and f"/share/{made['token']}/files/1'" in page.text
        assert other["token"] not in page.text


def test_the_seed_route_needs_a_session_and_the_csrf_token(live: Live) -> None:
    body = {"SeriesKey": live.series["SeriesKey"], "expires_in": 3600}
    with live.recipient() as anon:
        assert anon.post("/share/create", json=body).status_code == 401
        assert anon.post("/api/shares", json=body).status_code == 401
        assert anon.get("/api/shares").status_code == 401
    assert live.staff.post("/share/create", json=body).status_code == 403  # no CSRF token
    r = live.staff.post("/share/create", json=body, headers=live.csrf)
    assert (
        r.status_code == 201
        and r.json()["token"] in r.json()["url"]
        and r.headers["cache-control"] == "no-store"
    )
    for bad in (
        {"SeriesKey": "0" * 40},
        {"SeriesKey": "not-a-key"},
        {"SeriesKey": live.series["SeriesKey"], "expires_in": 30},
        {"SeriesKey": live.series["SeriesKey"], "expires_in": 8 * 24 * 3600},
        {"SeriesKey": live.series["SeriesKey"], "passcode": "123"},
        {"SeriesKey": live.series["SeriesKey"], "max_downloads": 0},
        {"SeriesKey": live.series["SeriesKey"], "token": "chosen"},
    ):
        got = live.staff.post("/api/shares", json=bad, headers=live.csrf)
        assert got.status_code in (400, 404, 422) and got.json()["detail"], bad


def test_staff_see_and_revoke_their_own_links_and_admins_all(live: Live) -> None:
    mine = live.share()
    with live.recipient() as anon:
        assert anon.get(f"/share/{mine['token']}").status_code == 200
        assert {s["id"] for s in live.other.get("/api/shares").json()}.isdisjoint({mine["id"]})
        assert live.other.post(f"/api/shares/{mine['id']}/revoke", headers=live.other_csrf).status_code == 403
        assert live.other.get(f"/api/shares/{mine['id']}/log").status_code == 403
        assert live.staff.post(f"/api/shares/{mine['id']}/revoke").status_code == 403  # no CSRF token
        assert live.staff.post("/api/shares/999999/revoke", headers=live.csrf).status_code == 404
        r = live.admin.post(f"/api/shares/{mine['id']}/revoke", headers=live.admin_csrf)
        assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revoked_by"] == "boss"
        for path in ("", "/download", "/files", "/files/1"):
            gone = anon.get(f"/share/{mine['token']}{path}")
            assert gone.status_code == 410 and "withdrawn" in gone.text, path
            assert gone.headers["cache-control"] == "no-store"
    assert mine["id"] in {s["id"] for s in live.admin.get("/api/shares").json()}
    audit = live.admin.get("/api/audit", params={"limit": 500}).json()
    actions = {(e["action"], e["detail"].get("share_id")) for e in audit}
    assert ("share_create", mine["id"]) in actions and ("share_revoke", mine["id"]) in actions
    # identical refusals from one address share a row with a count (the page and its download button)
    accesses = [e for e in audit if e["action"] == "share_access"]
    assert sum(e["repeats"] for e in accesses if e["detail"].get("share_id") == mine["id"]) == 5


def test_an_expired_link_answers_410(live: Live) -> None:
    made = live.share(expires_in=60)
    with live.recipient() as anon:
        assert anon.get(f"/share/{made['token']}").status_code == 200
        live.clock.offset += 61
        try:
            r = anon.get(f"/share/{made['token']}/download")
        finally:
            live.clock.offset -= 61
    assert r.status_code == 410 and "Link expired" in r.text and "expired on" in r.text


def test_passcode_form_lockout_and_grant_cookie(live: Live, tmp_path: Path) -> None:
    made = live.share(passcode="kidney-stone-42")
    token = made["token"]
    with live.recipient() as anon:
        first = anon.get(f"/share/{token}")
        assert first.status_code == 200 and "name='passcode'" in first.text
        assert live.series["Modality"] not in first.text.split("<h1>")[1]  # nothing shown before the passcode
        assert press_download(anon, token).status_code == 403
        for left in (4, 3, 2, 1):
            wrong = anon.post(f"/share/{token}", data={"passcode": "guess-guess"})
            assert wrong.status_code == 403 and f"{left} tr" in wrong.text
        locked = anon.post(f"/share/{token}", data={"passcode": "guess-guess"})
        assert (
            locked.status_code == 429
            and locked.headers["retry-after"] == "900"
            and "15 minutes" in locked.text
        )
        right = anon.post(f"/share/{token}", data={"passcode": "kidney-stone-42"})
        assert right.status_code == 429  # locked: even the right passcode
        live.clock.offset += 15 * 60
        try:
            ok = anon.post(f"/share/{token}", data={"passcode": "kidney-stone-42"})
            assert ok.status_code == 303 and ok.headers["location"] == f"/share/{token}"
            cookie = ok.headers["set-cookie"]
            assert f"Path=/share/{token}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
            assert "kidney" not in cookie
            assert anon.get(f"/share/{token}").status_code == 200  # the grant cookie stands in
            r = download(anon, token)
            assert r.status_code == 200
            check_zip(live, r.content, tmp_path)
        finally:
            live.clock.offset -= 15 * 60
    with live.recipient() as fresh:  # no cookie: the passcode in a form works too (never in a URL)
        assert download(fresh, token, passcode="kidney-stone-42").status_code == 200
    log = live.staff.get(f"/api/shares/{made['id']}/log", params={"limit": 500}).json()
    assert [e["outcome"] for e in reversed(log)] == (
        ["passcode_required", "passcode_required"]
        + ["bad_passcode"] * 5
        + ["locked"]
        + ["ok"] * 6  # passcode, page, download, zip, download, zip
    )


def test_download_limit(live: Live) -> None:
    made = live.share(max_downloads=1)
    with live.recipient() as anon:
        listing = anon.get(f"/share/{made['token']}/files", headers={"Accept": "application/json"}).json()
        assert all(f["url"] is None for f in listing["files"])
        assert anon.get(f"/share/{made['token']}/files/1").status_code == 410
        assert download(anon, made["token"]).status_code == 200
        again = download(anon, made["token"])
        assert again.status_code == 410 and "used up" in again.text
    assert live.staff.get("/api/shares").json()[0]["status"] == "used_up"


def raw_get(live: Live, path: str) -> tuple[int, bytes]:
    """A request sent byte for byte as written: no client tidies the path first."""
    host, port = urlsplit(live.url).hostname, urlsplit(live.url).port
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_path_tricks_and_guessed_tokens_get_nothing(live: Live) -> None:
    made = live.share()
    t = made["token"]
    tricks = [
        f"/share/{t}/files/../../etc/passwd",
        f"/share/{t}/files/..%2f..%2fetc%2fpasswd",
        f"/share/{t}/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        f"/share/{t}/files/%252e%252e%252fetc%252fpasswd",
        f"/share/{t}/files/..\\..\\etc\\passwd",
        f"/share/{t}/files/0",
        f"/share/{t}/files/-1",
        f"/share/{t}/files/{live.series['file_count'] + 1}",
        f"/share/{t}/files/99999999999",
        f"/share/{t}/files/1e1",
        f"/share/{t}/files/%D9%A1",  # an Arabic-Indic one
        "/share/..%2f..%2fetc%2fpasswd/download",
        "/share/%2e%2e/%2e%2e/etc/passwd",
        f"/share/{t}/..%2f..%2f..%2fetc%2fpasswd",
    ]
    for path in tricks:
        status, body = raw_get(live, path)
        assert status in (400, 404), (path, status)
        assert b"root:" not in body, path
    guesses = [secrets.token_urlsafe(32) for _ in range(20)] + [t[:-1], t[:20], t + "x", t.swapcase()]
    with live.recipient() as anon:
        for guess in guesses:
            for suffix in ("", "/download", "/files", "/files/1"):
                r = anon.get(f"/share/{guess}{suffix}")
                assert r.status_code == 404 and "Link not found" in r.text, (guess, suffix)
    # The tricks that reached this link asked for file numbers it does not have: logged, nothing sent.
    log = live.staff.get(f"/api/shares/{made['id']}/log").json()
    assert {(e["kind"], e["outcome"], e["bytes_sent"]) for e in log} == {("file", "not_found", 0)}


class GatedReader:
    """A local reader whose reads wait for the gate once `free` files have been opened: downloads start
    (headers sent) and then hold."""

    def __init__(self, free: int = 0) -> None:
        self.gate = threading.Event()
        self.free = free
        self.lock = threading.Lock()

    def open(self, path: str) -> IO[bytes]:
        fh = LocalReader().open(path)
        with self.lock:
            self.free -= 1
            if self.free >= 0:
                return fh
        read, gate = fh.read, self.gate

        def held(size: int | None = -1) -> bytes:
            if not gate.wait(60):
                raise OSError("the test never opened the gate")
            return read(size)

        fh.read = held  # type: ignore[method-assign]
        return fh


def test_stream_limit_answers_429_while_the_service_keeps_answering(live: Live, tmp_path: Path) -> None:
    sharing = live.app.state.sharing
    gated = GatedReader()
    sharing.reader_for = lambda path: gated
    per_link_and_client, sharing.limiter = sharing.limiter, StreamLimiter(live.settings.share_max_streams)
    made = live.share()
    with live.recipient() as anon:
        zip_url = press_download(anon, made["token"]).headers["location"]
    results: list[bytes] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            with live.recipient() as anon:
                r = anon.get(zip_url)
                assert r.status_code == 200
                results.append(r.content)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(live.settings.share_max_streams)]
    try:
        for t in threads:
            t.start()
        full = live.settings.share_max_streams
        wait_until(lambda: sharing.limiter.active >= full, 30, "every download to have started")
        with live.recipient() as anon:
            busy = anon.get(zip_url)
            assert busy.status_code == 429 and int(busy.headers["retry-after"]) > 0 and "Busy" in busy.text
            assert anon.get(f"/share/{made['token']}/files/1").status_code == 429
            assert anon.get(f"/share/{made['token']}").status_code == 200  # pages need no place
        for _ in range(5):
            started = time.monotonic()
            status = live.staff.get("/api/index/status")
            assert status.status_code == 200 and time.monotonic() - started < 5
        assert live.staff.get("/api/search", params={"q": "müller"}).status_code == 200
    finally:
        gated.gate.set()
        for t in threads:
            t.join(60)
        sharing.reader_for, sharing.limiter = None, per_link_and_client
    assert not errors, errors
    assert len(results) == live.settings.share_max_streams
    for data in results:
        check_zip(live, data, tmp_path)
    wait_until(lambda: not sharing.limiter.active, 10, "the places to be given back")
    outcomes = [e["outcome"] for e in live.staff.get(f"/api/shares/{made['id']}/log").json()]
    assert outcomes.count("busy") == 2 and outcomes.count("ok") == live.settings.share_max_streams + 2


def wait_for_incomplete(live: Live, share_id: int) -> list[dict]:
    """The share's access log once its last download is logged incomplete and its stream slot is free."""

    def logged() -> list[dict] | None:
        log = live.staff.get(f"/api/shares/{share_id}/log").json()
        done = log and log[0]["outcome"] == "incomplete" and not live.app.state.sharing.limiter.active
        return list(log) if done else None

    return wait_until(logged, 10, "the download logged as incomplete")


def test_a_cut_download_is_logged_as_incomplete_and_frees_its_place(live: Live) -> None:
    sharing = live.app.state.sharing
    made = live.share()
    # Small pieces, and a hold after a few files (sizes are taken first: one open per file), so the
    # download is cut with some of it sent.
    gated = GatedReader(free=live.series["file_count"] + 3)
    sharing.reader_for, sharing.chunk = (lambda path: gated), 1024
    try:
        with (
            live.recipient() as anon,
            anon.stream("GET", press_download(anon, made["token"]).headers["location"]) as r,
        ):
            assert r.status_code == 200
            next(r.iter_raw(100))
    finally:
        gated.gate.set()
        sharing.reader_for, sharing.chunk = None, CHUNK
    log = wait_for_incomplete(live, made["id"])
    assert 0 < log[0]["bytes_sent"] < int(r.headers["content-length"])


def test_tokens_never_reach_the_server_log(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = live.share(passcode="kidney-stone-42")
    with live.recipient() as anon:
        anon.get(f"/share/{made['token']}")
        anon.post(f"/share/{made['token']}", data={"passcode": "wrong-wrong"})
        download(anon, made["token"])
        anon.get(f"/share/{made['token']}/files/1")
    # The server's records (httpx and httpcore are this test's client, naming the URL it asked for).
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "uvicorn.access" for r in server)  # pytest listens even where uvicorn would not
    text = "\n".join(r.getMessage() for r in server)
    assert "/share/…" in text  # the requests were logged, without their tokens
    assert made["token"] not in text and made["token"][:10] not in text
    assert "kidney" not in text and "wrong-wrong" not in text


class ShrinkingReader:
    """Files read shorter than they measured: as if one were cut while the zip was being sent."""

    def open(self, path: str) -> IO[bytes]:
        fh = LocalReader().open(path)
        read = fh.read

        def short(size: int | None = -1) -> bytes:
            return read(size)[:-1] if fh.tell() == 0 and size not in (None, -1) else read(size)

        fh.read = short  # type: ignore[method-assign]
        return fh


def test_a_file_changing_mid_download_breaks_the_download_rather_than_the_zip(live: Live) -> None:
    sharing = live.app.state.sharing
    sharing.reader_for = lambda path: ShrinkingReader()
    made = live.share()
    try:
        with live.recipient() as anon, pytest.raises(httpx.RemoteProtocolError):
            download(anon, made["token"])
    finally:
        sharing.reader_for = None
    wait_for_incomplete(live, made["id"])


def test_a_passcode_form_posted_from_another_site_is_refused(live: Live) -> None:
    made = live.share(passcode="kidney-stone-42")
    with live.recipient() as anon:
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
            for path in ("", "/download"):
                r = anon.post(
                    f"/share/{made['token']}{path}", data={"passcode": "kidney-stone-42"}, headers=headers
                )
                assert r.status_code == 403 and "Refused" in r.text and "set-cookie" not in r.headers
        # A browser's own form: Referrer-Policy no-referrer makes its Origin "null"; Sec-Fetch-Site says same.
        ok = anon.post(
            f"/share/{made['token']}",
            data={"passcode": "kidney-stone-42"},
            headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        )
        assert ok.status_code == 303
    assert live.staff.get(f"/api/shares/{made['id']}/log").json()[0]["outcome"] == "ok"
