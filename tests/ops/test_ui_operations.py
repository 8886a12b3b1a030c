"""The operations blocks in real headless Chromium: the Indexing panel shows the schedule with its next run
and a warning when the data directory's disk is nearly full; an admin pauses and resumes it; on the Audit
page an admin finds a patient and gets the links to their access report as PDF and CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
from opskit import PASSWORD, add_study, live_service

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser


def test_schedule_warning_pause_and_access_report_links(browser: object, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    add_study(archive, "MÜLLER^HANS", "PID-M", "1.2.826.7")
    run_index(tmp_path / "pacsindex.db", [source_for(str(archive))], ScanOptions(workers=1))
    errors: list[str] = []
    with live_service(tmp_path, roots=(str(archive),), disk_warning_percent=100) as live:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-ZA")  # type: ignore[attr-defined]
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(live.url + "/")
        page.fill("#signin-name", "admin")
        page.fill("#signin-password", PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#who")).to_have_text("admin")
        page.click("#nav a[href='#/indexing']")  # the schedule is on the Indexing page

        text = page.locator("#schedule-text")
        expect(text).to_contain_text("every 15 minutes, a full pass at 02:00 each night")
        expect(text).to_contain_text("Next pass:")
        expect(page.locator(".schedule-warning")).to_contain_text("disk is nearly full")
        page.click("#schedule-toggle")
        expect(text).to_contain_text("Paused")
        expect(page.locator("#schedule-toggle")).to_have_text("Resume schedule")
        page.screenshot(path=str(ARTIFACTS / "ui-schedule-paused.png"))
        page.click("#schedule-toggle")
        expect(text).to_contain_text("Next pass:")

        page.click("#nav a[href='#/audit']")
        page.fill("#report-patient", "müller")
        page.click("#access-reports button[type=submit]")
        item = page.locator("#report-patients li")
        expect(item).to_contain_text("MÜLLER, Hans (PID-M, born 1980-01-01)")
        pdf = item.locator("a", has_text="PDF report")
        expect(pdf).to_have_attribute("href", "/api/reports/access?patient_id=PID-M&format=pdf")
        with page.expect_download() as download:
            pdf.click()
        assert download.value.suggested_filename == "access-report-PID-M.pdf"
        page.screenshot(path=str(ARTIFACTS / "ui-access-report.png"))
        context.close()
    assert errors == []
