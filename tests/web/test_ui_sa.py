"""South African fields in real headless Chromium: a patient whose SA ID number disagrees with the header
gets a badge that says where, the medical aid and hospital show on each result, the filters offer what the
index holds, and filtering by medical aid leaves only that scheme's patient. The series view shows the ID
as printed on an ID card, the mismatch in words, the medical aid and the hospital with its group."""

from __future__ import annotations

from pathlib import Path

import pytest

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from support_sa import DISCOVERY, write_sa_tree
from support_web import PASSWORD, serve

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser


def test_badge_chips_and_medical_aid_filter(browser: object, tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1)
    run_index(settings.db, [LocalTree(str(write_sa_tree(tmp_path / "archive")))], ScanOptions(workers=1))
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with serve(tmp_path, settings=settings, users={"reception": False}) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en-ZA")  # type: ignore[attr-defined]
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.fill("#signin-name", "reception")
        page.fill("#signin-password", PASSWORD)
        page.keyboard.press("Enter")
        page.click("#search-button")  # everything, newest study first
        patients = page.locator("tr.study-row .patient-name")
        expect(patients).to_have_text(["NAIDOO, Priya", "VAN DER MERWE, Anna", "MOKOENA, Sipho"])

        # The badge: only on the patient whose SA ID disagrees with the header, saying how.
        badges = page.locator("tr.study-row .badge.dq")
        expect(badges).to_have_count(1)
        mokoena = page.locator("tr.study-row", has_text="MOKOENA")
        badge = mokoena.locator(".badge.dq")
        expect(badge).to_have_text("⚠ SA ID mismatch")
        expect(badge).to_have_attribute(
            "title", "SA ID says born 1980-01-01, header says 1981-02-03; SA ID says male, header says female"
        )
        expect(mokoena.locator(".sa-id")).to_have_text(" · SA ID 800101 5009 087")
        expect(mokoena.locator(".chip.aid")).to_have_text("Government Employees Medical Scheme")
        merwe = page.locator("tr.study-row", has_text="VAN DER MERWE")
        expect(merwe.locator(".chip.aid")).to_have_text(DISCOVERY)
        expect(merwe.locator(".chip.hospital")).to_have_text("Netcare Milpark Hospital")
        hospital = merwe.locator(".chip.hospital")
        expect(hospital).to_have_attribute("title", "Netcare Milpark Hospital · Netcare")
        page.screenshot(path=str(ARTIFACTS / "ui-sa-search.png"), full_page=True)

        # Filter by medical aid: the choices come from the index; only Discovery's patient is left.
        expect(page.locator("#medical-aid option")).to_have_count(3)
        page.select_option("#medical-aid", DISCOVERY)
        page.click("#search-button")
        expect(patients).to_have_text(["VAN DER MERWE, Anna"])
        expect(page.locator("#result-summary")).to_have_text("1–1 of 1 study")
        expect(page.locator("#medical-aid option:checked")).to_have_text(f"{DISCOVERY} (1 patient)")

        # Another filter: the hospital group; then clear them all.
        page.select_option("#medical-aid", "")
        page.select_option("#hospital-group", "Life Healthcare")
        page.click("#search-button")
        expect(patients).to_have_text(["NAIDOO, Priya"])
        page.click("#search-clear")
        expect(page.locator("#hospital-group")).to_have_value("")

        # The series view: the ID as printed, the mismatch in words, medical aid and hospital.
        page.fill("#q", "mokoena")
        page.keyboard.press("Enter")
        patients.first.click()  # the study, then its series
        page.locator(".series-link").first.click()
        expect(page.locator("#series-title")).to_have_text("MOKOENA, Sipho")
        expect(page.locator("#series-sa-id")).to_contain_text("800101 5009 087")
        expect(page.locator("#series-dq")).to_be_visible()
        expect(page.locator("#series-dq-text li")).to_have_text(
            ["SA ID says born 1980-01-01, header says 1981-02-03", "SA ID says male, header says female"]
        )
        grid = page.locator(".detail-grid")
        expect(grid).to_contain_text("Government Employees Medical Scheme")
        expect(grid).to_contain_text("Groote Schuur Hospital · Public (Western Cape Health)")
        page.screenshot(path=str(ARTIFACTS / "ui-sa-series.png"))
        context.close()
    assert errors == []
