"""OHIF works against pacsindex: the published OHIF Viewer build (npm @ohif/app's dist/, installed into
.test-tools/ by `make test` via scripts/test-tools.sh) is served by a small static server in this test, whose
app-config.js points a DICOMweb data source at pacsindex's /dicom-web through a same-origin proxy that adds
the API token (what the README tells a practice to do). Headless Chromium opens the study list and a study,
and the image OHIF draws is checked by its canvas pixels; OHIF's image loader (wadors) fetches /frames."""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from dicomweb_live import LiveDicomWeb, serve

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from conftest import ROOT, make_dataset, write_dicom

pytestmark = pytest.mark.browser

STUDY, SERIES = "1.9.7", "1.9.7.1"
APP_CONFIG = """window.config = {
  routerBasename: '/',
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 1,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: false,
  investigationalUseDialog: { option: 'never' },
  defaultDataSourceName: 'pacsindex',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'pacsindex',
      configuration: {
        friendlyName: 'pacsindex',
        name: 'pacsindex',
        qidoRoot: '%(root)s/dicom-web',
        wadoRoot: '%(root)s/dicom-web',
        wadoUriRoot: '%(root)s/dicom-web/wado',
        qidoSupportsIncludeField: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true, relativeResolution: 'studies' },
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
"""
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")


def ohif_dist() -> Path:
    found = sorted((ROOT / ".test-tools").glob("ohif-*/dist/index.html"))
    if not found:
        pytest.fail("the OHIF Viewer build is missing: run `bash scripts/test-tools.sh` (make test does)")
    return found[-1].parent


@dataclass
class Viewer:
    url: str
    asked: list[str] = field(default_factory=list)


def _handler(
    dist: Path, config: bytes, live: LiveDicomWeb, asked: list[str], upstream: httpx.Client
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet)
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path.startswith("/dicom-web/"):
                # The practice's reverse proxy: same origin for the viewer, the token added here.
                asked.append(self.path)
                keep = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
                r = upstream.get(self.path, headers={**keep, **live.auth})
                out = {k: v for k, v in r.headers.items() if k.lower() in ("content-type", "warning")}
                self._send(r.status_code, r.content, out)
                return
            if path == "/app-config.js":
                self._send(200, config, {"Content-Type": "text/javascript"})
                return
            file = (dist / path.lstrip("/")).resolve()
            if not file.is_file() or dist not in file.parents:
                file = dist / "index.html"  # the viewer's own routes (/viewer?StudyInstanceUIDs=...)
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self._send(200, file.read_bytes(), {"Content-Type": kind})

    return Handler


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    dist = ohif_dist().resolve()
    base = tmp_path_factory.mktemp("ohif")
    archive = base / "archive"
    rows = 128
    y, x = np.mgrid[0:rows, 0:rows]
    for i in range(3):
        ds = make_dataset(
            rows=rows,
            PatientName="MOKOENA^SIPHO",
            PatientID="PID-OHIF",
            StudyInstanceUID=STUDY,
            SeriesInstanceUID=SERIES,
            InstanceNumber=i + 1,
            StudyDescription="CT ABDOMEN",
        )
        disc = ((x - 64) ** 2 + (y - 64) ** 2 < (20 + 10 * i) ** 2) * 1500
        ds.PixelData = (x * 8 + y * 4 + disc).astype(np.uint16).tobytes()
        ds.BitsStored, ds.HighBit = 12, 11
        ds.WindowCenter, ds.WindowWidth = 1200, 2400
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.ImagePositionPatient = [0, 0, float(i * 5)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1, 1]
        ds.SliceThickness = 5
        write_dicom(archive / "ct" / f"IM{i}.dcm", ds)
    asked: list[str] = []
    with serve(base, archive) as live, httpx.Client(base_url=live.url, timeout=30) as upstream:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(dist, b"", live, asked, upstream))
        root = f"http://127.0.0.1:{server.server_address[1]}"
        config = (APP_CONFIG % {"root": root}).encode()
        server.RequestHandlerClass = _handler(dist, config, live, asked, upstream)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Viewer(root, asked)
        finally:
            server.shutdown()
            server.server_close()


def canvas_pixels(page: Any) -> np.ndarray:
    """What the viewport's canvas shows, as an RGB array (a screenshot of the canvas element)."""
    import io

    from PIL import Image

    png = page.locator("canvas.cornerstone-canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_ohif_opens_a_study_and_draws_the_image(browser: Any, viewer: Viewer) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(viewer.url + "/", wait_until="domcontentloaded")
        # The study list, from QIDO-RS.
        page.get_by_text("MOKOENA", exact=False).first.wait_for(timeout=60_000)
        page.goto(f"{viewer.url}/viewer?StudyInstanceUIDs={STUDY}", wait_until="domcontentloaded")
        canvas = page.locator("canvas.cornerstone-canvas").first
        canvas.wait_for(state="visible", timeout=60_000)
        pixels = np.zeros((1, 1, 3))
        deadline = 60_000
        while deadline > 0:
            pixels = canvas_pixels(page)
            if pixels.max() > 40 and pixels.std() > 10:
                break
            page.wait_for_timeout(500)
            deadline -= 500
        page.screenshot(path=str(ARTIFACTS / "ohif-study.png"))
    finally:
        page.close()
    assert pixels.max() > 40 and pixels.std() > 10, errors  # drawn: not black, and not one flat grey
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a gradient and a disc, not a placeholder
    h, w, _ = pixels.shape
    assert pixels[h // 2, w // 2].mean() > pixels[h // 2, w // 2 - w // 3].mean() + 60  # the bright disc
    assert any(f"/series/{SERIES}/metadata" in p for p in viewer.asked)
    assert any("/frames/1" in p for p in viewer.asked), viewer.asked  # wadors: pacsindex's frames
