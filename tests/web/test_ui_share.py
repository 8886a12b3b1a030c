"""The seed's acceptance test B in real headless Chromium (Debian's, driven by Playwright): sign in, search,
open a series, create a share link from it, open the link as a recipient (another browser context, no
session), download, and check the zip holds file_count DICOM files whose headers are the sources'.
Then a passcode-protected link, and the Shares page with its access log and revoke. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import pydicom
import pytest

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from pacsindex.config.settings import Settings
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree
from support_web import PASSWORD, serve

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser


def headers(data: bytes) -> tuple[object, object]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return ds.file_meta, ds


def check_zip(path: Path, db: Path, key: str) -> int:
    """The downloaded zip: every file of the series' study, each one's header (and bytes) those of its
    source, and a DICOMDIR."""
    with store.reading(db) as conn:
        keys = [
            r[0]
            for r in conn.execute(
                "SELECT SeriesKey FROM series "
                "WHERE study_id = (SELECT study_id FROM series WHERE SeriesKey = ?)",
                (key,),
            )
        ]
        sources = []
        for k in keys:
            series = store.get_series(conn, k)
            assert series is not None
            sources += list(store.series_files(conn, series["series_id"]))
    by_hash = {hashlib.sha256(Path(s["path"]).read_bytes()).digest(): s for s in sources}
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None and "DICOMDIR" in zf.namelist()
        dicoms = [n for n in zf.namelist() if n.startswith("DICOM/")]
        assert len(dicoms) == len(sources) == len(by_hash)
        for name in dicoms:
            data = zf.read(name)
            source = by_hash[hashlib.sha256(data).digest()]
            assert headers(data) == headers(Path(source["path"]).read_bytes()), name
    return len(sources)


def test_search_share_download_end_to_end(browser: object, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_sample(archive, patients=6, files=300)
    settings = Settings(db=tmp_path / "pacsindex.db", roots=(str(archive),), workers=1)
    run_index(settings.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with serve(tmp_path, settings=settings, users={"thandi": False}) as server:
        staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-ZA")  # type: ignore[attr-defined]
        staff.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page = staff.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")

        # 1. Sign in and search for a patient by name.
        page.fill("#signin-name", "thandi")
        page.fill("#signin-password", PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#who")).to_have_text("thandi")
        page.fill("#q", "müller")
        page.keyboard.press("Enter")
        expect(page.locator("tr.study-row .patient-name")).to_have_text(["MÜLLER, Hans"])

        # 2. Open the study, a series of it, and share its whole study (the default): 1 hour, no passcode.
        page.locator("tr.study-row .patient-name").first.click()
        page.locator(".series-link").first.click()
        expect(page.locator("#series-title")).to_have_text("MÜLLER, Hans")
        key = page.url.rsplit("/", 1)[1]
        expect(page.locator("#share-panel")).to_be_visible()
        expect(page.locator("#share-summary")).to_contain_text("series")
        page.select_option("#share-expiry", label="1 hour")
        page.select_option("#share-passcode-mode", "none")
        page.fill("#share-note", "Dr Naidoo, Milpark")
        page.click("#share-create")
        url_box = page.locator("#share-url")
        expect(url_box).to_have_value(re.compile(rf"^{re.escape(server.url)}/share/[A-Za-z0-9_-]{{43}}$"))
        link = url_box.input_value()
        expect(page.locator(".share-made")).to_contain_text("shown only this once")
        page.click("#share-copy")
        expect(page.locator(".copy-said").first).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == link
        page.click("#share-copy-message")
        message = page.evaluate("navigator.clipboard.readText()")
        assert link in message and "SAST" in message and "Dr Naidoo, Milpark" in message
        page.screenshot(path=str(ARTIFACTS / "ui-share-series.png"))

        # 3. The recipient opens the link (a browser with no session) and downloads.
        recipient = browser.new_context(viewport={"width": 1000, "height": 760}, accept_downloads=True)  # type: ignore[attr-defined]
        them = recipient.new_page()
        them.on("pageerror", lambda exc: errors.append(str(exc)))
        them.goto(link)
        file_count = int(them.locator("#share-file-count").inner_text())
        expect(them.locator("h1")).to_have_text("Shared images")
        expect(them.locator("#share-note")).to_have_text("Dr Naidoo, Milpark")
        expect(them.locator("body")).not_to_contain_text("MÜLLER")  # no patient name on the page
        them.screenshot(path=str(ARTIFACTS / "ui-share-landing.png"))
        with them.expect_download() as got:
            them.click("#share-download")
        saved = tmp_path / got.value.suggested_filename
        got.value.save_as(saved)
        assert saved.suffix == ".zip" and "MULLER" not in saved.name.upper()

        # 4. The zip has file_count files with the same headers as the archive's.
        assert check_zip(saved, settings.db, key) == file_count

        # A second link with a typed passcode and one download.
        page.select_option("#share-passcode-mode", "typed")
        page.fill("#share-passcode", "kidney-stone-42")
        page.fill("#share-limit", "1")
        page.click("#share-create")
        expect(page.locator(".share-made")).to_contain_text("needs the passcode")
        expect(page.locator("#share-passcode-shown")).to_have_count(0)  # typed: not shown back
        guarded = page.locator("#share-url").input_value()
        assert guarded != link
        them.goto(guarded)
        expect(them.locator("#passcode")).to_be_visible()
        them.fill("#passcode", "wrong-guess")
        them.keyboard.press("Enter")
        expect(them.locator(".notice.error")).to_contain_text("wrong passcode (4 tries left")
        them.screenshot(path=str(ARTIFACTS / "ui-share-passcode.png"))
        them.fill("#passcode", "kidney-stone-42")
        them.keyboard.press("Enter")
        expect(them.locator("#share-file-count")).to_have_text(str(file_count))
        expect(them.locator("body")).to_contain_text("Downloads left")
        with them.expect_download() as second:
            them.click("#share-download")
        second.value.save_as(tmp_path / "second.zip")
        check_zip(tmp_path / "second.zip", settings.db, key)
        them.goto(guarded)
        expect(them.locator("h1")).to_have_text("Link used up")

        # The Shares page: both links, the access log, and revoke.
        page.click("#nav a[href='#/shares']")
        rows = page.locator(".share-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0).locator(".badge")).to_have_text("Used up")
        expect(rows.nth(1).locator(".badge")).to_have_text("Active")
        rows.nth(0).locator("button", has_text="Log").click()
        log = page.locator(".share-log").first
        expect(log).to_contain_text("Wrong passcode")
        expect(log).to_contain_text("Zip download")
        page.once("dialog", lambda dialog: dialog.accept())
        rows.nth(1).locator("button", has_text="Revoke").click()
        expect(page.locator(".share-row").nth(1).locator(".badge")).to_have_text("Revoked")
        page.locator(".share-row").nth(1).locator("button", has_text="Log").click()
        expect(page.locator(".share-log").last).to_contain_text("Zip download")
        page.screenshot(path=str(ARTIFACTS / "ui-shares-page.png"), full_page=True)
        them.goto(link)
        expect(them.locator("h1")).to_have_text("Link withdrawn")
        recipient.close()
        staff.close()
    assert errors == []
