"""An admin saves the practice's details on the admin page (headless Chromium) and a share recipient's
page names the practice; the share stream settings reach the running service."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from chromium import browser_fixture  # noqa: F401  (the "browser" fixture)
from conftest import write_dicom
from pacsindex.config import settings as config
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

PASSWORD = "correct horse battery"


@pytest.mark.browser
def test_an_admin_sets_the_practice_details_recipients_see(browser: object, tmp_path: Path) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    write_dicom(tmp_path / "archive" / "IM0.dcm")
    settings = Settings(db=tmp_path / "pacsindex.db", roots=(str(tmp_path / "archive"),), workers=1)
    run_index(settings.db, [LocalTree(str(tmp_path / "archive"))], ScanOptions(workers=1))
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.state.pacsindex.accounts.add_user("boss", PASSWORD, admin=True)
    with ThreadedServer(app, settings) as server:
        context = browser.new_context()  # type: ignore[attr-defined]
        page = context.new_page()
        page.goto(server.url + "/")
        page.fill("#signin-name", "boss")
        page.fill("#signin-password", PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#who")).to_have_text("boss")
        page.goto(server.url + "/#/settings/practice")  # Settings → Practice details
        page.fill("#practice-name", "Rosebank Imaging")
        page.fill("#practice-phone", "011 555 0199")
        page.click("#practice-save")
        expect(page.locator("#practice-said")).to_contain_text("Saved")
        page.reload()
        expect(page.locator("#practice-name")).to_have_value("Rosebank Imaging")
        csrf = page.evaluate("fetch('/api/me').then(r => r.json()).then(me => me.csrf_token)")
        key = page.evaluate("fetch('/api/search').then(r => r.json()).then(found => found[0].SeriesKey)")
        made = page.evaluate(
            "([key, csrf]) => fetch('/api/shares', {method: 'POST', headers: {'Content-Type': "
            "'application/json', 'X-CSRF-Token': csrf}, body: JSON.stringify({SeriesKey: key})})"
            ".then(r => r.json())",
            [key, csrf],
        )
        assert "Rosebank Imaging" in made["message"]
        landing = httpx.get(made["url"])
        assert "Rosebank Imaging" in landing.text and "011 555 0199" in landing.text
        context.close()


def test_share_stream_settings_reach_the_service(tmp_path: Path) -> None:
    toml = tmp_path / "pacsindex.toml"
    toml.write_text(
        "share_max_streams = 6\nshare_max_streams_per_link = 3\nshare_max_streams_per_client = 1\n"
        "share_stall_seconds = 5\n"
    )
    settings = config.load(toml, environ={}).with_overrides(db=tmp_path / "i.db")
    sharing = create_app(settings).state.sharing
    assert (sharing.limiter.limit, sharing.limiter.per_link, sharing.limiter.per_client) == (6, 3, 1)
    assert sharing.settings.share_stall_seconds == 5
    with pytest.raises(config.ConfigError):
        config.load(environ={"PACSINDEX_SHARE_STALL_SECONDS": "0"})
