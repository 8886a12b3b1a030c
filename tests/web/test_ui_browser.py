"""End to end in real headless Chromium (Debian's, driven by Playwright): sign in, start indexing a
generated archive from the Indexing page, watch the bar reach 100 % while the worklist offers the new
results instead of moving, search a lower-case non-ASCII name, open a study and a series, check the audit
log, and save screenshots to test-artifacts/."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions
from pacsindex.sample.archive import write_sample
from support_jobs import GatedTree
from support_web import PASSWORD, serve

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser


def test_sign_in_index_search_and_open_a_series(browser: object, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_sample(archive, patients=12, files=1500)
    gate = threading.Event()
    sources: list[GatedTree] = []

    def source_for(root: str) -> GatedTree:
        sources.append(GatedTree(root, gate, before_gate=30))  # holds the run until the test lets go
        return sources[-1]

    settings = Settings(db=tmp_path / "pacsindex.db", roots=(str(archive),), workers=1)
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    options = ScanOptions(workers=1, commit_seconds=0.0, progress_seconds=0.1)
    gated = {"scan_options": options, "source_for": source_for}
    with serve(tmp_path, settings=settings, users={"thandi": True}, **gated) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-ZA")  # type: ignore[attr-defined]
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")

        # Sign in: a wrong password first, then the right one, by keyboard.
        expect(page.locator("#signin-name")).to_be_focused()
        page.keyboard.type("thandi")
        page.keyboard.press("Tab")
        page.keyboard.type("not the password")
        page.keyboard.press("Enter")
        expect(page.locator("#signin-message")).to_have_text("Wrong user name or password.")
        page.fill("#signin-password", PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#who")).to_have_text("thandi")
        expect(page.locator("#index-chip")).to_have_text("Not indexed yet")

        # Start indexing from the Indexing page (the chip leads there); the run is held after a few folders,
        # so its middle can be looked at.
        page.click("#index-chip")
        expect(page.locator("#index-state")).to_have_text("Not indexed yet")
        page.click("#index-start")
        expect(page.locator("#index-state")).to_have_text("Indexing")
        expect(page.locator("#index-chip")).to_have_text(re.compile(r"^Indexing"))
        expect(page.locator("#index-stop")).to_be_visible()
        expect(page.locator("#index-percent")).to_have_text("counting files…")
        # A first index reads one file of each series folder first: the page says how many series wait
        # for the rest of their images.
        expect(page.locator("#stat-series .stat-note")).to_have_text(re.compile(r"^\d+ still being indexed$"))
        page.click("#nav a[href='#/search']")
        page.click("#search-button")  # an empty search lists the newest studies indexed so far
        summary = page.locator("#result-summary")
        expect(summary).to_have_text(re.compile(r"^1–\d+ of \d+ stud"))
        partial = int(re.search(r"of (\d+)", summary.inner_text()).group(1))  # type: ignore[union-attr]

        gate.set()
        page.click("#index-chip")
        expect(page.locator("#index-percent")).to_have_text("100 %", timeout=60_000)
        expect(page.locator("#index-bar")).to_have_attribute("value", "100")
        expect(page.locator("#index-state")).to_have_text("Up to date")
        expect(page.locator("#index-chip")).to_have_text("Up to date")
        expect(page.locator("#stat-series")).to_have_text(re.compile(r"^\d+$"))  # none left being indexed
        expect(page.locator("#index-updated")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d SAST$"))
        status = server.app.state.pacsindex.jobs.status()
        assert status["files_processed"] == status["enumerated_files"] > 1500
        # Back on the worklist, the rows did not move: the new ones are offered instead.
        page.click("#nav a[href='#/search']")
        expect(summary).to_have_text(re.compile(rf"of {partial} stud"))
        expect(page.locator("#new-results")).to_have_text(re.compile(r"^\d+ new results?: show$"))
        page.click("#show-new")
        expect(summary).not_to_have_text(re.compile(rf"of {partial} stud"))
        total = int(re.search(r"of (\d+)", summary.inner_text()).group(1))  # type: ignore[union-attr]
        assert total > partial

        # Search a lower-case, non-ASCII name: "/" jumps to the search box.
        summary.click()  # somewhere that is not a text box
        page.keyboard.press("/")
        expect(page.locator("#q")).to_be_focused()
        page.fill("#q", "müller")
        page.keyboard.press("Enter")
        expect(page.locator("tr.study-row .patient-name")).to_have_text(["MÜLLER, Hans"])
        page.screenshot(path=str(ARTIFACTS / "ui-search.png"))

        # Open the study by keyboard, then a series: its fields, and every file under Technical details.
        page.keyboard.press("Tab")  # from the search box, past the buttons and sort controls, to the row
        page.locator("tr.study-row").first.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#study-patient")).to_have_text("MÜLLER, Hans")
        page.locator(".series-link").first.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#series-title")).to_have_text("MÜLLER, Hans")
        page.click("details.technical summary")
        rows = page.locator(".files-table tbody tr")
        expect(rows.first).to_be_visible()
        files_card = page.locator("h3.files-title")
        count = int(re.search(r"\((\d+)\)", files_card.inner_text()).group(1))  # type: ignore[union-attr]
        assert rows.count() == count > 0
        expect(page.locator("#series-folder")).to_contain_text("MÜLLER")
        page.screenshot(path=str(ARTIFACTS / "ui-series.png"), full_page=False)

        # Back to the study, then to the results, kept in memory (not in the address bar or history).
        page.click("text=← Back to study")
        expect(page.locator("#study-patient")).to_have_text("MÜLLER, Hans")
        page.click("text=← Back to worklist")
        expect(page.locator("#q")).to_have_value("müller")
        assert "müller" not in page.url.lower() and "ller" not in page.url

        # The admin's audit log shows who searched for what and opened which series.
        page.click("#nav a[href='#/audit']")
        table = page.locator(".audit-table")
        expect(table).to_contain_text("thandi opened")
        expect(table).to_contain_text("of MÜLLER, Hans")
        expect(table).to_contain_text("“müller”")
        expect(table).to_contain_text("thandi started indexing")
        page.screenshot(path=str(ARTIFACTS / "ui-audit.png"))

        # A tablet-width look at the search page.
        page.set_viewport_size({"width": 768, "height": 1024})
        page.click("#nav a[href='#/search']")
        expect(page.locator("tr.study-row .patient-name")).to_have_text(["MÜLLER, Hans"])
        page.screenshot(path=str(ARTIFACTS / "ui-search-tablet.png"))

        page.click("#signout")
        expect(page.locator("#signin-message")).to_have_text("You have signed out.")
        context.close()
    assert errors == []
