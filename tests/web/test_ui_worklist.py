"""The worklist as reception and radiologists use it, in headless Chromium at 1366×768 and on a 390×844
phone: one row per study with names as people write them, sorting, pages, keyboard use, the place kept when
coming back from a study, series with thumbnails (or a placeholder), a list that never moves while indexing
runs ("N new results: show"), the status chip and the Indexing page, technical details folded away, the
audit log in sentences, the Settings menu, print, and axe-core on every page. Screenshots go to
test-artifacts/, and to docs/img/ with PACSINDEX_DOC_SCREENSHOTS=1."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from axe import assert_accessible
from chromium import ARTIFACTS, browser_fixture, doc_screenshot  # noqa: F401  (the "browser" fixture)
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions
from pacsindex.sample.archive import write_sample
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer
from support_jobs import GatedTree
from support_wait import wait_until

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
A4 = {"width": 794, "height": 1123}  # 210 × 297 mm at 96 dpi


@dataclass
class Served:
    url: str
    app: Any
    gate: threading.Event


@contextmanager
def serve(tmp_path: Path, *, patients: int, files: int, held: bool, before_gate: int = 8) -> Iterator[Served]:
    archive = tmp_path / "archive"
    write_sample(archive, patients=patients, files=files)
    gate = threading.Event()
    if not held:
        gate.set()

    def source_for(root: str) -> GatedTree:
        return GatedTree(root, gate, before_gate=before_gate)

    settings = Settings(db=tmp_path / "pacsindex.db", roots=(str(archive),), workers=1, data_dir=tmp_path)
    app = create_app(
        settings,
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        scan_options=ScanOptions(workers=1, commit_seconds=0.0, progress_seconds=0.1),
        source_for=source_for,
    )
    app.state.pacsindex.accounts.add_user("thandi", PASSWORD, admin=True)
    app.state.pacsindex.accounts.add_user("sipho", PASSWORD)
    with ThreadedServer(app, settings) as server:
        yield Served(server.url, app, gate)
        gate.set()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """56 studies of 30 patients, indexed."""
    with serve(tmp_path_factory.mktemp("worklist-ui"), patients=30, files=900, held=False) as live:
        live.app.state.pacsindex.jobs.start([str(r) for r in live.app.state.pacsindex.settings.roots])
        assert live.app.state.pacsindex.jobs.wait(120)
        yield live


def new_page(browser: Any, viewport: dict[str, int]) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=viewport, locale="en-ZA")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def sign_in(page: Any, url: str, name: str = "thandi", hash_: str = "") -> None:
    page.goto(url + "/" + hash_)
    page.fill("#signin-name", name)
    page.fill("#signin-password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#who")).to_have_text(name)


def test_the_worklist_by_keyboard_keeps_its_place(browser: Any, indexed: Served) -> None:
    context, page, errors = new_page(browser, DESKTOP)
    sign_in(page, indexed.url)
    expect(page.locator("#index-chip")).to_have_text("Up to date")
    assert_accessible(page, "worklist before a search")
    page.keyboard.press("Enter")  # the search box has the focus: an empty search lists the newest studies
    rows = page.locator("tr.study-row")
    expect(rows).to_have_count(50)
    expect(page.locator("#result-summary")).to_have_text("1–50 of 56 studies")
    names = page.locator("tr.study-row .patient-name")
    expect(names.filter(has_text="MÜLLER, Hans").first).to_be_visible()
    assert "^" not in page.locator("#worklist").inner_text()
    dates = page.locator("tr.study-row td.date").all_inner_texts()
    assert dates == sorted(dates, reverse=True)
    muller = page.locator("tr.study-row", has_text="MÜLLER, Hans").first
    expect(muller.locator(".who-line")).to_have_text(re.compile(r"^\d+ y · Male · ID PID-MUELLER$"))
    expect(muller.locator("td.num")).to_have_text(re.compile(r"^\d+ / \d+$"))
    assert_accessible(page, "worklist")

    # Pages, not one long list.
    page.click("#page-next")
    expect(page.locator("#result-summary")).to_have_text("51–56 of 56 studies")
    expect(rows).to_have_count(6)
    page.click("#page-prev")
    expect(rows).to_have_count(50)

    # Sorted by name, A to Z, then Z to A.
    page.click("#sort-name")
    expect(page.locator("th.col-name")).to_have_attribute("aria-sort", "ascending")
    listed = names.all_inner_texts()
    assert listed == sorted(listed, key=str.casefold)
    page.click("#sort-name")
    expect(page.locator("th.col-name")).to_have_attribute("aria-sort", "descending")
    page.click("#sort-date")
    expect(page.locator("th.col-date")).to_have_attribute("aria-sort", "descending")

    # Keyboard only: Tab into the list, arrows move, → shows the series, Enter opens the study.
    page.locator("#sort-date").focus()  # the last column heading that sorts; then the list
    page.keyboard.press("Tab")
    expect(rows.nth(0)).to_be_focused()
    for _ in range(30):
        page.keyboard.press("ArrowDown")
    chosen = rows.nth(30)
    expect(chosen).to_be_focused()
    expect(chosen).to_have_attribute("aria-current", "true")
    page.keyboard.press("ArrowUp")
    chosen = rows.nth(29)
    expect(chosen).to_be_focused()
    key = chosen.get_attribute("data-key")
    page.keyboard.press("ArrowRight")
    series = page.locator(f"tr.series-row[data-for='{key}']")
    expect(series).to_be_visible()
    expect(series.locator(".series-card").first).to_be_visible()
    # Each card has its thumbnail, or (no thumbnail to be had) its modality in a placeholder: never a
    # broken image.
    cards = series.locator(".series-card")
    page.wait_for_function(
        """(row) => [...row.querySelectorAll("img.thumb")].every((i) => i.complete && i.naturalWidth > 0)""",
        arg=series.element_handle(),
    )
    assert series.locator(".thumb").count() == cards.count() > 0
    assert page.evaluate("window.scrollY") > 0
    on_screen = chosen.bounding_box()["y"]  # where the row is in the window
    patient = chosen.locator(".patient-name").inner_text()
    page.keyboard.press("Enter")
    expect(page.locator("#study-patient")).to_have_text(patient)
    assert_accessible(page, "study")

    # Back: the same row chosen and focused, its series still open, the scroll where it was.
    page.click("text=← Back to worklist")
    expect(page.locator(f"tr.study-row[data-key='{key}']")).to_be_focused()
    expect(series).to_be_visible()
    assert abs(page.locator(f"tr.study-row[data-key='{key}']").bounding_box()["y"] - on_screen) < 5
    page.keyboard.press("ArrowLeft")
    expect(series).to_be_hidden()

    # For the README: the top of the list, the second study chosen and its series open.
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    expect(page.locator("tr.series-row:visible .series-card").first).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    doc_screenshot(page, "worklist-desktop.png")
    context.close()
    assert errors == []


def test_a_study_prints_on_one_sheet_and_the_series_hides_technical_details(
    browser: Any, indexed: Served
) -> None:
    context, page, errors = new_page(browser, DESKTOP)
    sign_in(page, indexed.url)
    page.fill("#q", "müller")
    page.keyboard.press("Enter")
    page.locator("tr.study-row .patient-name").first.click()
    expect(page.locator("#study-patient")).to_have_text("MÜLLER, Hans")
    expect(page.locator("#study-view")).to_have_attribute("href", re.compile(r"^#/viewer/study/[0-9.]+$"))
    expect(page.locator("#study-printed")).to_be_hidden()
    page.mouse.move(0, 0)
    page.set_viewport_size(A4)
    page.emulate_media(media="print")
    expect(page.locator("#topbar")).to_be_hidden()
    expect(page.locator("#study-print")).to_be_hidden()
    expect(page.locator("details.technical")).to_be_hidden()
    expect(page.locator("#study-printed")).to_contain_text("by thandi, from pacsindex")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= A4["height"], "one sheet"
    doc_screenshot(page, "study-print.png")
    page.emulate_media(media="screen")
    page.set_viewport_size(DESKTOP)

    # A series: people's words first; UIDs, SeriesKey, paths and transfer syntaxes folded away.
    page.locator(".series-card a").first.click()
    expect(page.locator("#series-title")).to_have_text("MÜLLER, Hans")
    details = page.locator("details.technical")
    expect(details.locator(".files-table")).to_be_hidden()
    for hidden in ("SeriesKey", "Series UID", "Transfer syntax"):
        assert hidden not in page.locator("#view").inner_text()
    details.locator("summary").click()
    expect(details.locator(".files-table")).to_be_visible()
    expect(details).to_contain_text("SeriesKey")
    assert_accessible(page, "series")
    context.close()
    assert errors == []


def test_on_a_phone_the_search_box_and_the_first_result_fit_the_first_screen(
    browser: Any, indexed: Served
) -> None:
    context, page, errors = new_page(browser, PHONE)
    sign_in(page, indexed.url)
    page.fill("#q", "müller")
    page.keyboard.press("Enter")
    first = page.locator("tr.study-row").first
    expect(first).to_be_visible()
    for element in (page.locator("#q"), first):
        box = element.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    expect(page.locator("#date-from")).to_be_hidden()  # the filters fold away on a phone
    page.click("#filters-toggle")
    expect(page.locator("#date-from")).to_be_visible()
    page.click("#filters-toggle")
    assert_accessible(page, "worklist on a phone")
    doc_screenshot(page, "worklist-phone.png")
    context.close()
    assert errors == []


def test_results_never_move_while_indexing_and_the_chip_shows_progress(browser: Any, tmp_path: Path) -> None:
    with serve(tmp_path, patients=12, files=500, held=True) as live:
        watch_the_list_while_indexing(browser, live, tmp_path)


def test_a_study_and_a_series_still_being_indexed_say_so(browser: Any, tmp_path: Path) -> None:
    """A first index reads one file of each new folder first (the survey): a study or series seen then says
    it is still being indexed, in words, and stops saying so once every file is read."""
    with serve(tmp_path, patients=6, files=300, held=True, before_gate=40) as live:
        live.app.state.pacsindex.jobs.start([str(r) for r in live.app.state.pacsindex.settings.roots])

        def filling() -> tuple[str, int] | None:
            try:
                with closing(sqlite3.connect(f"file:{tmp_path / 'pacsindex.db'}?mode=ro", uri=True)) as db:
                    return db.execute("SELECT SeriesKey, study_id FROM series WHERE filling = 1").fetchone()
            except sqlite3.Error:
                return None  # not created yet

        series_key, study_no = wait_until(filling, what="a series still being indexed")
        context, page, errors = new_page(browser, DESKTOP)
        sign_in(page, live.url, "sipho", f"#/study/{study_no}")
        expect(page.locator("#study-filling")).to_have_text("Still being indexed")
        expect(page.locator(".series-card", has_text="(still being indexed)").first).to_be_visible()
        page.goto(f"{live.url}/#/series/{series_key}")
        expect(page.locator("#series-filling")).to_have_text("Still being indexed")
        live.gate.set()
        assert live.app.state.pacsindex.jobs.wait(120)
        page.reload()
        expect(page.locator("#series-title")).to_be_visible()
        expect(page.locator("#series-filling")).to_have_count(0)
        context.close()
        assert errors == []


def watch_the_list_while_indexing(browser: Any, live: Served, tmp_path: Path) -> None:
    context, page, errors = new_page(browser, DESKTOP)
    sign_in(page, live.url, "sipho")
    expect(page.locator("#index-chip")).to_have_text("Not indexed yet")
    expect(page.locator("#nav a[href='#/indexing']")).to_be_hidden()  # the page is an admin's
    page.click("#index-chip")
    expect(page.locator("#index-folders li")).to_have_text([str(tmp_path / "archive")])
    expect(page.locator("#index-roots-input")).to_have_count(0)  # staff index what is configured, only
    expect(page.locator("#index-history")).to_have_count(0)
    assert_accessible(page, "indexing, staff")
    page.click("#index-start")
    expect(page.locator("#index-chip")).to_have_text(re.compile(r"^Indexing"))
    expect(page.locator("#index-state")).to_have_text("Indexing")

    page.click("#nav a[href='#/search']")
    page.click("#search-button")
    summary = page.locator("#result-summary")
    expect(summary).to_have_text(re.compile(r"of \d+ stud"))
    # A first index reads one file of each new folder first: those studies say they are still being indexed.
    expect(page.locator("tr.study-row .badge.filling").first).to_have_text("Still being indexed")
    before_rows = page.locator("tr.study-row").all_inner_texts()
    before_total = int(re.search(r"of (\d+)", summary.inner_text()).group(1))  # type: ignore[union-attr]
    page.locator("tr.study-row").first.hover()

    live.gate.set()
    expect(page.locator("#index-chip")).to_have_text("Up to date", timeout=60_000)
    offer = page.locator("#new-results")
    expect(offer).to_have_text(re.compile(r"^\d+ new results?: show$"), timeout=30_000)
    # Nothing under the pointer changed while the run went on.
    assert page.locator("tr.study-row").all_inner_texts() == before_rows
    assert re.search(r"of (\d+)", summary.inner_text()).group(1) == str(before_total)  # type: ignore[union-attr]
    # The offer's count follows the run; once it has finished, "show" brings every study in the index.
    with closing(sqlite3.connect(tmp_path / "pacsindex.db")) as db:
        studies = db.execute("SELECT count(*) FROM studies").fetchone()[0]
    expect(offer).to_have_text(f"{studies - before_total} new results: show", timeout=30_000)
    page.click("#show-new")
    expect(summary).to_have_text(re.compile(rf"of {studies} stud"))
    expect(offer).to_have_text("")
    expect(page.locator("tr.study-row .badge.filling")).to_have_count(0)  # every file read: no marker left
    context.close()
    assert errors == []


def test_admin_pages_in_plain_words_with_settings_in_one_place(browser: Any, indexed: Served) -> None:
    context, page, errors = new_page(browser, DESKTOP)
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    # A disabled account is told so at sign-in.
    indexed.app.state.pacsindex.accounts.add_user("old", PASSWORD)
    indexed.app.state.pacsindex.accounts.update_user("old", disabled=True)
    page.goto(indexed.url + "/")
    assert_accessible(page, "sign-in")
    page.fill("#signin-name", "old")
    page.fill("#signin-password", PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#signin-message")).to_have_text("This account is disabled; ask an admin.")
    sign_in(page, indexed.url)

    # Dates the wrong way round, in words, before anything is asked of the server.
    page.fill("#date-from", "2024-05-01")
    page.fill("#date-to", "2024-04-01")
    page.click("#search-button")
    expect(page.locator("#search-message")).to_have_text(
        "The study date from (2024-05-01) is after the study date to (2024-04-01): swap them, or clear one."
    )
    page.click("#search-clear")

    # Open a study and a series, share it: the audit log says so in sentences naming the patient.
    page.fill("#q", "müller")
    page.keyboard.press("Enter")
    page.locator("tr.study-row .patient-name").first.click()
    description = page.locator("#study-page .fields dd").nth(7).inner_text()
    page.locator(".series-card a").first.click()
    page.select_option("#share-passcode-mode", "none")
    page.click("#share-create")
    expect(page.locator("#share-url")).to_be_visible()
    assert_accessible(page, "series with its share link")
    recipient = browser.new_context(viewport=PHONE)  # the person the link is for: no account, often a phone
    landing = recipient.new_page()
    landing.goto(page.locator("#share-url").input_value())
    expect(landing.locator("h1")).to_have_text("Shared images")
    assert_accessible(landing, "a share link's page")
    recipient.close()
    page.click("#nav a[href='#/audit']")
    table = page.locator(".audit-table")
    # "MR PROSTATE", not "MR MR PROSTATE": the modality is said once
    expect(table).to_contain_text(f"thandi shared {description} of MÜLLER, Hans")
    expect(table).to_contain_text("as a link, valid until")
    expect(table).to_contain_text("thandi opened the study")
    expect(table).to_contain_text("thandi searched for “müller”.")
    assert "^" not in table.inner_text()
    assert_accessible(page, "audit log")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-audit-sentences.png"))

    # Indexing: the admin's page, with the runs and the problem files.
    page.click("#nav a[href='#/indexing']")
    expect(page.locator(".runs-table tbody tr")).to_have_count(1)
    expect(page.locator(".runs-table")).to_contain_text("Finished")
    expect(page.locator("#problems-title")).to_have_text("Problem files")
    assert_accessible(page, "indexing, admin")
    page.screenshot(path=str(ARTIFACTS / "ui-indexing-page.png"), full_page=True)

    # Settings in one menu; each section answers to the keyboard and axe.
    page.click("#nav a[href='#/settings']")
    menu = page.locator(".settings-menu a")
    expect(menu).to_have_text(["NAS", "Orthanc", "API tokens", "Practice details", "Server"])
    for section in ("nas", "orthanc", "tokens", "practice", "server"):
        page.click(f"#settings-{section}")
        expect(page.locator(f"#settings-{section}")).to_have_attribute("aria-current", "page")
        assert_accessible(page, f"settings: {section}")
    page.click("#settings-nas")
    buttons = page.locator("#nas-form .actions button:visible")
    expect(buttons).to_have_text(["Save", "Test connection"])  # the same order as Orthanc's
    page.click("#settings-orthanc")
    expect(page.locator("#orthanc-form button")).to_have_text(["Save", "Test connection"])

    # A secret shown once has a Copy button; New password and Disable ask first.
    page.click("#settings-tokens")
    page.fill("#new-token-name", "Weasis")
    page.click("#new-token button[type=submit]")
    expect(page.locator("[data-copy-for='new-token-value']")).to_be_visible()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("[data-copy-for='new-token-value']")
    expect(page.locator("#tokens .copy-said")).to_have_text("Copied.")
    page.click("#nav a[href='#/users']")
    row = page.locator(".users-table tr", has_text="sipho")
    row.get_by_role("button", name="New password").click()
    expect(page.locator("#new-password-value")).to_have_value(re.compile(r".{10,}"))
    expect(page.locator("[data-copy-for='new-password-value']")).to_be_visible()
    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text("Disabled")
    assert [d.split("?")[0] for d in dialogs] == ["Give sipho a new password", "Disable sipho"]
    assert_accessible(page, "users")
    page.screenshot(path=str(ARTIFACTS / "ui-users.png"))
    page.click("#nav a[href='#/settings']")
    page.click("#settings-tokens")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    assert_accessible(page, "settings on a phone")
    page.screenshot(path=str(ARTIFACTS / "ui-settings-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    for hash_ in ("#/shares", "#/account"):
        page.goto(indexed.url + "/" + hash_)
        expect(page.locator("#view h2")).to_be_visible()
        assert_accessible(page, hash_)
    context.close()
    assert errors == []
