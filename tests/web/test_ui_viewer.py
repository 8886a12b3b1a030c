"""The images in headless Chromium, judged by pixels: thumbnails in the search results and on a series'
page, the viewer scrolling a series (keys, wheel, slider) with CT window presets changing the drawn image's
brightness, on a 1366x768 laptop and a 390x844 phone, and a share recipient viewing the shared series.
Screenshots of the viewer go to docs/img/ (viewer-desktop.png, viewer-phone.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argon2 import PasswordHasher
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

PASSWORD = "correct horse battery"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

# The mean grey level of the middle of the viewer's canvas (where the sample phantom is).
CENTER = """() => {
  const c = document.getElementById('v-canvas');
  if (!c || !c.width) return -1;
  const d = c.getContext('2d').getImageData(Math.floor(c.width * 0.4), Math.floor(c.height * 0.4),
                                             Math.floor(c.width * 0.2), Math.floor(c.height * 0.2)).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
  return sum / (d.length / 4) / 3;
}"""


def brightness_becomes(page: Any, test: str) -> float:
    """Wait (with a deadline) until the canvas' centre brightness passes `test` (JS on `b`), and return it."""
    page.wait_for_function(f"() => {{ const b = ({CENTER})(); return {test}; }}", timeout=15_000)
    return float(page.evaluate(CENTER))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("ui-viewer")
    archive = base / "archive"
    write_sample(archive, patients=3, files=150, rows=256, columns=256)
    cine(archive / "CINE" / "US1.dcm")
    settings = Settings(db=base / "pacsindex.db", workers=1, render_workers=1)
    run_index(settings.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.state.pacsindex.accounts.add_user("thandi", PASSWORD)
    with ThreadedServer(app, settings) as running:
        yield running


def cine(path: Path) -> None:
    """An ultrasound clip: 12 frames of 64x64, each brighter than the one before."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality, ds.StudyDate = "DLAMINI^ZOE", "PID-CINE", "US", "20240301"
    ds.SeriesNumber, ds.InstanceNumber, ds.NumberOfFrames = 1, 1, 12
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.WindowCenter, ds.WindowWidth = "128", "256"
    ds.PixelData = np.stack([np.full((64, 64), 10 + 20 * k, np.uint8) for k in range(12)]).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def signed_in(browser: Any, url: str, **context: Any) -> Any:
    ctx = browser.new_context(locale="en-ZA", **context)
    r = ctx.request.post(url + "/auth/signin", data={"name": "thandi", "password": PASSWORD})
    assert r.ok, r.text()
    return ctx


def biggest_ct(ctx: Any, url: str) -> dict[str, Any]:
    found = ctx.request.get(url + "/api/search", params={"limit": 500}).json()
    return max((s for s in found if s["Modality"] == "CT"), key=lambda s: s["file_count"])


def test_thumbnails_in_results_and_the_viewer_on_a_laptop(browser: Any, server: Any) -> None:
    ctx = signed_in(browser, server.url, viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ct = biggest_ct(ctx, server.url)
    page.goto(server.url + "/")
    page.fill("#q", ct["PatientID"])
    page.keyboard.press("Enter")
    page.locator("tr.study-row button.expand").first.click()  # the study's series unfold, with thumbnails
    thumbs = page.locator("tr.series-row img.thumb")
    expect(thumbs.first).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('tr.series-row img.thumb')]"
        ".some(i => i.complete && i.naturalWidth > 0)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-results-thumbnails.png"))
    page.goto(f"{server.url}/#/series/{ct['SeriesKey']}")
    page.wait_for_function(
        "() => { const i = document.getElementById('series-thumb'); return i && i.naturalWidth > 0; }"
    )
    page.screenshot(path=str(ARTIFACTS / "ui-series-thumbnail.png"))
    page.click("#open-viewer")
    expect(page.locator("#v-position")).to_contain_text(f"Image 1 / {ct['file_count']}")
    own = brightness_becomes(page, "b > 5")

    # Window presets change what is drawn (checked on the canvas' pixels).
    page.click("[data-preset='Soft tissue']")
    soft = brightness_becomes(page, f"Math.abs(b - {own}) > 3 || b > 60")
    expect(page.locator("#v-window")).to_contain_text("W 400 L 40")
    page.click("[data-preset='Bone']")
    bone = brightness_becomes(page, f"b < {soft} - 15")
    page.keyboard.press("2")  # Lung
    expect(page.locator("#v-window")).to_contain_text("W 1500 L -600")
    brightness_becomes(page, f"b > {bone} + 15")

    # Scrolling: arrow keys, the wheel, the slider, End.
    page.keyboard.press("ArrowDown")
    expect(page.locator("#v-position")).to_contain_text(f"Image 2 / {ct['file_count']}")
    page.mouse.move(700, 400)
    page.mouse.wheel(0, 120)
    expect(page.locator("#v-position")).to_contain_text(f"Image 3 / {ct['file_count']}")
    page.keyboard.press("End")
    expect(page.locator("#v-position")).to_contain_text(f"Image {ct['file_count']} / {ct['file_count']}")
    page.locator("#v-slider").fill("4")
    expect(page.locator("#v-position")).to_contain_text(f"Image 5 / {ct['file_count']}")
    expect(page.locator("#v-position")).to_contain_text("Position")

    # Drag to change window/level, zoom in and fit again.
    page.mouse.move(700, 400)
    page.mouse.down()
    page.mouse.move(760, 430, steps=4)
    page.mouse.up()
    expect(page.locator("#v-window")).not_to_contain_text("W 1500 L -600")
    page.click("#v-zoom-in")
    expect(page.locator("#v-window")).to_contain_text("Zoom 125%")
    page.keyboard.press("f")
    expect(page.locator("#v-window")).to_contain_text("Zoom 100%")

    # The study's other series are in the strip; one click opens another.
    strip = page.locator(".v-thumb")
    assert strip.count() >= 2
    page.keyboard.press("1")
    brightness_becomes(page, "b > 5")
    ARTIFACTS.mkdir(exist_ok=True)
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / "viewer-desktop.png"))
    page.locator(".v-thumb:not(.current)").first.click()
    expect(page.locator(".v-thumb.current")).to_have_count(1)
    expect(page.locator("#v-position")).to_contain_text("Image 1 /")
    assert not errors, errors
    ctx.close()


def test_the_viewer_on_a_phone(browser: Any, server: Any) -> None:
    ctx = signed_in(
        browser,
        server.url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ct = biggest_ct(ctx, server.url)
    page.goto(f"{server.url}/viewer/{ct['SeriesKey']}")
    expect(page.locator("#v-position")).to_contain_text(f"Image 1 / {ct['file_count']}")
    before = brightness_becomes(page, "b > 5")
    page.tap("[data-preset='Bone']")
    brightness_becomes(page, f"Math.abs(b - {before}) > 10")
    page.locator("#v-slider").fill("9")
    expect(page.locator("#v-position")).to_contain_text(f"Image 10 / {ct['file_count']}")
    # A vertical swipe on the image scrolls (touch events as a phone sends them).
    box = page.locator("#v-stage").bounding_box()
    assert box is not None and box["width"] <= 390
    page.evaluate(
        """([x, y]) => {
          const stage = document.getElementById('v-stage');
          const t = (yy) => new Touch({identifier: 1, target: stage, clientX: x, clientY: yy});
          const send = (kind, touches) =>
            stage.dispatchEvent(new TouchEvent(kind, {touches, bubbles: true, cancelable: true}));
          send('touchstart', [t(y)]);
          send('touchmove', [t(y - 80)]);
          send('touchend', []);
        }""",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    expect(page.locator("#v-position")).to_contain_text(f"Image 13 / {ct['file_count']}")
    page.tap("[data-preset='Soft tissue']")
    brightness_becomes(page, "b > 5")
    page.wait_for_function("() => [...document.querySelectorAll('.v-thumb img')].every(i => i.complete)")
    page.screenshot(path=str(DOCS_IMG / "viewer-phone.png"))
    assert not errors, errors
    ctx.close()


def test_a_recipient_views_the_shared_series(browser: Any, server: Any) -> None:
    staff = signed_in(browser, server.url)
    ct = biggest_ct(staff, server.url)
    csrf = staff.request.get(server.url + "/api/me").json()["csrf_token"]
    made = staff.request.post(
        server.url + "/api/shares", data={"SeriesKey": ct["SeriesKey"]}, headers={"X-CSRF-Token": csrf}
    ).json()
    them = browser.new_context(viewport={"width": 1000, "height": 760}).new_page()
    errors: list[str] = []
    them.on("pageerror", lambda exc: errors.append(str(exc)))
    them.goto(made["url"])
    them.click("#share-view")
    expect(them.locator("#v-position")).to_contain_text(f"Image 1 / {ct['file_count']}")
    brightness_becomes(them, "b > 5")
    expect(them.locator(".v-thumb")).to_have_count(1)  # only what was shared
    them.keyboard.press("ArrowDown")
    expect(them.locator("#v-position")).to_contain_text(f"Image 2 / {ct['file_count']}")
    expect(them.locator("#v-patient")).not_to_contain_text(ct["PatientName"].split("^")[0])
    them.screenshot(path=str(ARTIFACTS / "ui-viewer-recipient.png"))
    assert not errors, errors
    staff.close()


def test_a_multi_frame_clip_plays(browser: Any, server: Any) -> None:
    ctx = signed_in(browser, server.url, viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    found = ctx.request.get(server.url + "/api/search", params={"q": "PID-CINE"}).json()
    page.goto(f"{server.url}/viewer/{found[0]['SeriesKey']}")
    expect(page.locator("#v-position")).to_contain_text("Image 1 / 12 · frame 1/12")
    first = brightness_becomes(page, "b > 1")
    expect(page.locator("#v-play")).to_be_visible()
    page.click("#v-play")
    page.wait_for_function(
        "() => /frame (\\d+)\\/12/.test(document.getElementById('v-position').textContent)"
        " && Number(/frame (\\d+)\\/12/.exec(document.getElementById('v-position').textContent)[1]) >= 4"
    )
    page.click("#v-play")  # pause
    assert page.locator("#v-play").inner_text() == "Play"
    page.locator("#v-slider").fill("11")
    expect(page.locator("#v-position")).to_contain_text("frame 12/12")
    brightness_becomes(page, f"b > {first} + 100")  # the last frame is the brightest
    assert not errors, errors
    ctx.close()
