"""The NAS settings card in real headless Chromium against the real Samba server: an admin fills in the
form, tests the connection and sees the share's entries, sees the sign-in refusal for a wrong password,
saves, and finds the password field empty with "unchanged" after a reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from chromium import ARTIFACTS, browser_fixture  # noqa: F401  (the "browser" fixture)
from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.sources.smb import reader as smb
from samba_server import (
    SambaServer,
    samba_fixture,  # noqa: F401  (the "samba" fixture)
)
from support_web import PASSWORD, serve

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.samba]

FOLDER = "uinas"


def test_admin_tests_and_saves_the_nas_connection(
    browser: object, samba: SambaServer, tmp_path: Path
) -> None:
    folder = samba.shares["archive"] / FOLDER
    write_dicom(folder / "2019" / "IM0.dcm")
    write_dicom(folder / "2020" / "IM0.dcm", SeriesInstanceUID="1.2.3.4.9")
    (folder / "readme.txt").write_text("not DICOM\n", encoding="utf-8")
    settings = Settings(db=tmp_path / "pacsindex.db", data_dir=tmp_path / "data", workers=1)
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    smb.close_connections()
    with serve(tmp_path, settings=settings, users={"thandi": True}) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en-ZA")  # type: ignore[attr-defined]
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/#/settings/nas")
        page.fill("#signin-name", "thandi")
        page.fill("#signin-password", PASSWORD)
        page.keyboard.press("Enter")
        card = page.locator("#nas-settings")
        expect(card).to_be_visible()
        expect(page.locator("#nas-status")).to_have_text("No NAS saved yet.")

        page.fill("#nas-host", "127.0.0.1")
        page.fill("#nas-share", "archive")
        page.fill("#nas-path", FOLDER)
        page.fill("#nas-user", samba.user)
        page.fill("#nas-password", samba.password)
        page.fill("#nas-port", str(samba.port))
        page.click("#nas-test")
        expect(page.locator("#nas-entries li")).to_have_text(["2019/", "2020/", "readme.txt"])
        expect(page.locator("#nas-result .notice")).to_contain_text(
            f"smb://127.0.0.1:{samba.port}/archive/uinas"
        )
        card.screenshot(path=str(ARTIFACTS / "ui-nas-test.png"))

        # A wrong password: the NAS's refusal, in words, and no listing.
        page.fill("#nas-password", "not-the-password")
        page.click("#nas-test")
        message = page.locator("#nas-result .notice.error")
        expect(message).to_contain_text("refused the login (user 'pacstest')")
        # ... in the page's words: the Settings page, not environment variables or `net use`
        expect(message).to_contain_text("the NAS user and password on the Settings page")
        assert "PACSINDEX_" not in message.inner_text() and "net use" not in message.inner_text()
        expect(page.locator("#nas-entries")).to_have_count(0)
        assert "not-the-password" not in message.inner_text()

        # A required field left empty: the browser says so before anything is sent.
        page.fill("#nas-host", "")
        page.click("#nas-test")
        assert page.eval_on_selector("#nas-host", "el => !el.validity.valid")
        page.fill("#nas-host", "127.0.0.1")

        # Save the right password; after a reload the field is empty and says "unchanged".
        page.fill("#nas-password", samba.password)
        page.click("#nas-save")
        expect(page.locator("#nas-result .notice.success")).to_contain_text("Saved.")
        expect(page.locator("#nas-url")).to_have_text(f"smb://127.0.0.1:{samba.port}/archive/{FOLDER}")
        page.reload()
        expect(page.locator("#nas-host")).to_have_value("127.0.0.1")
        expect(page.locator("#nas-password")).to_have_value("")
        expect(page.locator("#nas-password")).to_have_attribute("placeholder", "unchanged")
        page.click("#nas-test")  # the saved password is used
        expect(page.locator("#nas-entries li")).to_have_count(3)
        assert samba.password not in page.content()
        card.screenshot(path=str(ARTIFACTS / "ui-nas-saved.png"))

        # The saved NAS is one of the folders Start indexes, at once, and the run takes it.
        nas_url = f"smb://127.0.0.1:{samba.port}/archive/{FOLDER}"
        page.click("#index-chip")
        expect(page.locator("#index-folders li")).to_have_text([nas_url])
        page.click("#index-start")
        expect(page.locator("#index-chip")).to_have_text("Up to date", timeout=60_000)
        expect(page.locator(".runs-table tbody tr").first).to_contain_text(nas_url)

        # Remove asks first; saying no keeps the NAS.
        page.click("#nav a[href='#/settings']")
        asked: list[str] = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.click("#nas-remove")
        expect(page.locator("#nas-url")).to_have_text(nas_url)
        assert asked and asked[0].startswith("Remove the NAS settings")

        page.click("#nav a[href='#/audit']")
        expect(page.locator(".audit-table")).to_contain_text("thandi tested the NAS connection: it worked.")
        expect(page.locator(".audit-table")).to_contain_text("thandi changed the NAS settings.")
        context.close()
    smb.close_connections()
    assert errors == []
