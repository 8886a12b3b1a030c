"""CORS for a viewer served from another origin: the `cors_origins` setting (file or PACSINDEX_CORS_ORIGINS)
lets a page on a listed origin call /dicom-web with its API token from a real Chromium; preflight is
answered, Authorization allowed, Warning readable; other origins, and every path outside /dicom-web, get no
CORS headers; without the setting there are none at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from dicomweb_live import LiveDicomWeb, serve

from chromium import browser_fixture  # noqa: F401  (the "browser" fixture)
from conftest import write_dicom
from pacsindex.config import settings as config
from pacsindex.errors import ConfigError

PAGE = b"<!doctype html><html lang='en'><title>viewer</title><p>a viewer on another origin</p></html>"


class _Page(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)


@pytest.fixture(scope="module")
def page_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _archive(base: Path) -> Path:
    archive = base / "archive"
    for i in range(2):
        write_dicom(archive / f"IM{i}.dcm", PatientName="NKOSI^LINDA", InstanceNumber=i + 1)
    return archive


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, page_server: int) -> Iterator[LiveDicomWeb]:
    base = tmp_path_factory.mktemp("cors")
    origins = f"http://127.0.0.1:{page_server}, http://viewer.example.co.za:3000"
    settings = config.load(environ={"PACSINDEX_CORS_ORIGINS": origins})  # as an admin would set it
    assert settings.cors_origins == (f"http://127.0.0.1:{page_server}", "http://viewer.example.co.za:3000")
    with serve(base, _archive(base), cors_origins=settings.cors_origins) as server:
        yield server


FETCH = """async ([url, token]) => {
  try {
    const headers = {Authorization: 'Bearer ' + token, Accept: 'application/dicom+json'};
    const r = await fetch(url, {headers});
    return {status: r.status, count: (await r.json()).length, warning: r.headers.get('Warning')};
  } catch (e) {
    return {error: String(e)};
  }
}"""


@pytest.mark.browser
def test_a_viewer_on_a_listed_origin_searches_with_its_token(
    browser: Any, live: LiveDicomWeb, page_server: int
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{page_server}/")
        ok = page.evaluate(FETCH, [f"{live.dicomweb}/studies?limit=5000", live.token])
        assert ok["status"] == 200 and ok["count"] == 1 and "299" in ok["warning"], ok
        wrong_token = page.evaluate(FETCH, [f"{live.dicomweb}/studies", "not-the-token"])
        assert wrong_token.get("status") == 401  # readable by the viewer, so it can say why
        outside = page.evaluate(FETCH, [f"{live.url}/api/me", live.token])
        assert "error" in outside  # the staff API stays same-origin
        # The same page from an origin that is not listed (localhost is not 127.0.0.1) is refused.
        page.goto(f"http://localhost:{page_server}/")
        refused = page.evaluate(FETCH, [f"{live.dicomweb}/studies", live.token])
        assert "error" in refused, refused
    finally:
        page.close()


def test_preflight_and_headers(live: LiveDicomWeb, page_server: int) -> None:
    origin = f"http://127.0.0.1:{page_server}"
    pre = {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    r = httpx.options(f"{live.dicomweb}/studies", headers=pre)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    other = httpx.options(f"{live.dicomweb}/studies", headers={**pre, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    got = httpx.get(f"{live.dicomweb}/studies", headers={**live.auth, "Origin": origin})
    assert got.headers["access-control-allow-origin"] == origin
    assert "warning" in got.headers["access-control-expose-headers"].lower()
    page = httpx.get(f"{live.url}/api/me", headers={"Origin": origin})
    assert "access-control-allow-origin" not in page.headers


def test_no_cors_unless_set(tmp_path: Path) -> None:
    assert config.load(environ={}).cors_origins == ()
    with serve(tmp_path, _archive(tmp_path)) as live:
        pre = {"Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "GET"}
        r = httpx.options(f"{live.dicomweb}/studies", headers=pre)
        assert "access-control-allow-origin" not in r.headers
        got = httpx.get(f"{live.dicomweb}/studies", headers={**live.auth, "Origin": "http://127.0.0.1:1"})
        assert got.status_code == 200 and "access-control-allow-origin" not in got.headers


def test_the_setting_from_a_file_and_bad_values(tmp_path: Path) -> None:
    toml = tmp_path / "pacsindex.toml"
    toml.write_text(
        'cors_origins = ["https://ohif.example.co.za", "http://10.0.0.5:3000"]\n', encoding="utf-8"
    )
    assert config.load(toml, environ={}).cors_origins == (
        "https://ohif.example.co.za",
        "http://10.0.0.5:3000",
    )
    for bad in ("ohif.example.co.za", "https://ohif.example.co.za/viewer", "ftp://x"):
        with pytest.raises(ConfigError, match="cors_origins"):
            config.load(environ={"PACSINDEX_CORS_ORIGINS": bad})
