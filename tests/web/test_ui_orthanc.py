"""Send to Orthanc in real headless Chromium against a real Orthanc: an admin enters the Orthanc settings on
the Users page and tests the connection, then opens a series (one of whose files was damaged after indexing),
clicks "Send to Orthanc", sees the result with the damaged file named, and a second click sends nothing new.
Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from orthanc_server import OrthancServer, orthanc_fixture  # noqa: F401 - the `orthanc` fixture
from pacsindex.config.settings import Settings
from support_orthanc import index, make_series, series_key
from support_web import PASSWORD, serve

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.orthanc]

SERIES_UID = "1.2.826.99.8.1"


def test_admin_sets_up_orthanc_and_sends_a_series(
    browser: object, orthanc: OrthancServer, tmp_path: Path
) -> None:
    orthanc.clear()
    db = tmp_path / "pacsindex.db"
    folder = make_series(tmp_path / "archive", SERIES_UID, 5, name="MOLOI^LERATO")
    index(db, tmp_path / "archive")
    (folder / "IM003.dcm").write_bytes(b"damaged after indexing: not DICOM any more")
    key = series_key(db, SERIES_UID)
    settings = Settings(db=db, workers=1)
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with serve(tmp_path, settings=settings, users={"thandi": True}) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-ZA")  # type: ignore[attr-defined]
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.fill("#signin-name", "thandi")
        page.fill("#signin-password", PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#who")).to_have_text("thandi")

        # Before Orthanc is set up, the series view offers no send.
        page.goto(f"{server.url}/#/series/{key}")
        expect(page.locator("#series-title")).to_have_text("MOLOI, Lerato")
        expect(page.locator("#orthanc-send")).to_have_count(0)

        # The admin's Orthanc settings: a wrong password first, then the right one.
        page.click("#nav a[href='#/settings']")
        page.click("#settings-orthanc")
        page.fill("#orthanc-url", orthanc.url)
        page.fill("#orthanc-user", orthanc.user)
        page.fill("#orthanc-password", "not-the-password")
        page.click("#orthanc-test")
        expect(page.locator("#orthanc-message")).to_contain_text("refused the user name or password")
        page.fill("#orthanc-password", orthanc.password)
        page.click("#orthanc-test")
        expect(page.locator("#orthanc-message")).to_contain_text("Connected: Orthanc 1.")
        page.click("#orthanc-save")
        expect(page.locator("#orthanc-message")).to_have_text("Orthanc settings saved.")
        expect(page.locator("#orthanc-password")).to_have_value("")
        expect(page.locator("#orthanc-password")).to_have_attribute("placeholder", "saved (type to change)")
        page.screenshot(path=str(ARTIFACTS / "ui-orthanc-settings.png"))

        # Send the series: four files land, the damaged one is named with Orthanc's reason.
        page.goto(f"{server.url}/#/series/{key}")
        page.click("#orthanc-send")
        summary = page.locator("#orthanc-summary")
        expect(summary).to_contain_text("1 of 5 files did not reach Orthanc", timeout=60_000)
        expect(summary).to_contain_text("4 sent · 0 already in Orthanc · 1 failed")
        expect(page.locator("#orthanc-failures li")).to_have_count(1)
        expect(page.locator("#orthanc-failures li")).to_contain_text("IM003.dcm")
        expect(page.locator("#orthanc-failures li")).to_contain_text("Bad file format")
        expect(page.locator("#orthanc-bar")).to_have_attribute("value", "5")
        page.screenshot(path=str(ARTIFACTS / "ui-orthanc-send.png"))
        assert len(orthanc.get("/instances")) == 4

        # Sending again adds nothing: Orthanc already has the four.
        page.click("#orthanc-send")
        expect(summary).to_contain_text("0 sent · 4 already in Orthanc · 1 failed", timeout=60_000)
        assert len(orthanc.get("/instances")) == 4
        context.close()
    assert errors == []
