"""API tokens: made by an admin, shown once, kept only as a SHA-256 hash, revoked for good; schema
migration 5 on an existing index; and the admin's token card in real headless Chromium."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import httpx
import pytest

from chromium import browser_fixture  # noqa: F401  (the "browser" fixture)
from conftest import run_cli
from pacsindex.accounts.apitokens import ApiTokens
from pacsindex.accounts.audit import AuditLog
from pacsindex.config.settings import Settings
from pacsindex.errors import Conflict, InvalidQuery, NotFound, TokenRejected
from pacsindex.index import schema, store
from support_web import PASSWORD, serve


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tokens(tmp_path: Path) -> ApiTokens:
    return ApiTokens(tmp_path / "i.db", clock=Clock())


def test_a_token_is_shown_once_and_stored_only_as_its_hash(tokens: ApiTokens, tmp_path: Path) -> None:
    token, secret = tokens.create("Orthanc main", "boss")
    assert len(secret) == 43 and re.fullmatch(r"[A-Za-z0-9_-]+", secret)  # 32 random bytes
    assert token.name == "Orthanc main" and token.created_by == "boss" and token.active
    assert "token" not in token.public() and secret not in str(token.public())
    conn = sqlite3.connect(tmp_path / "i.db")
    [(stored,)] = conn.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    conn.close()
    for name in ("i.db", "i.db-wal"):
        if (tmp_path / name).exists():
            assert secret.encode() not in (tmp_path / name).read_bytes()
    assert tokens.authenticate(secret).id == token.id
    _, other = tokens.create("Weasis", "boss")
    assert other != secret


def test_wrong_missing_and_revoked_tokens_are_refused(tokens: ApiTokens) -> None:
    token, secret = tokens.create("script", "boss")
    for bad in (None, "", secret[:-1], secret + "x", "x" * 1000):
        with pytest.raises(TokenRejected):
            tokens.authenticate(bad)
    revoked = tokens.revoke(token.id)
    assert not revoked.active and revoked.revoked_at
    with pytest.raises(TokenRejected, match="revoked"):
        tokens.authenticate(secret)
    assert tokens.revoke(token.id).revoked_at == revoked.revoked_at  # revoking twice changes nothing
    with pytest.raises(NotFound):
        tokens.revoke(12345)


def test_names(tokens: ApiTokens) -> None:
    first, _ = tokens.create("Orthanc main", "boss")
    with pytest.raises(Conflict):
        tokens.create("ORTHANC MAIN", "boss")  # unique among tokens in force, any case
    tokens.revoke(first.id)
    second, _ = tokens.create("Orthanc main", "boss")  # free again once revoked
    for bad in ("", " ", "-lead", "a" * 65, "semi;colon", "new\nline"):
        with pytest.raises(InvalidQuery):
            tokens.create(bad, "boss")
    listed = tokens.list_tokens()
    assert [t.id for t in listed] == [second.id, first.id]  # in force first


def test_last_used_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    clock = Clock()
    tokens = ApiTokens(tmp_path / "i.db", clock=clock)
    token, secret = tokens.create("viewer", "boss")
    assert token.last_used_at is None
    tokens.authenticate(secret)
    used = tokens.get(token.id).last_used_at
    assert used is not None
    clock.now += 30
    tokens.authenticate(secret)
    assert tokens.get(token.id).last_used_at == used
    clock.now += 31
    tokens.authenticate(secret)
    assert tokens.get(token.id).last_used_at > used  # type: ignore[operator]


def test_migration_5_on_an_index_made_before_it(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for number, script in enumerate(schema.MIGRATIONS[:4], start=1):
        for statement in schema.statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO users (name, password_hash, is_admin, created_at, password_changed_at)"
        " VALUES ('a','x',1,'t','t')"  # an admin: a token works only while its maker is one
    )
    conn.close()
    migrated = store.connect(db)
    assert migrated.execute("PRAGMA user_version").fetchone()[0] >= 5
    assert migrated.execute("SELECT count(*) FROM users").fetchone()[0] == 1  # nothing lost
    migrated.close()
    token, secret = ApiTokens(db).create("after upgrade", "a")
    assert ApiTokens(db).authenticate(secret).id == token.id


def test_the_command_line_makes_lists_and_revokes_tokens(tmp_path: Path) -> None:
    db = str(tmp_path / "i.db")
    made = run_cli("token", "add", "Weasis reading room", "--db", db)
    secret = made.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret) and "shown this once" in made.stderr
    token = ApiTokens(db).authenticate(secret)
    listed = run_cli("token", "list", "--db", db).stdout
    assert "Weasis reading room" in listed and "in force" in listed and secret not in listed
    run_cli("token", "revoke", str(token.id), "--db", db)
    with pytest.raises(TokenRejected):
        ApiTokens(db).authenticate(secret)
    assert run_cli("token", "revoke", "99", "--db", db, check=False).returncode == NotFound.exit_code
    actions = [(e["action"], e["user"]) for e in AuditLog(db).entries()]
    assert {a for a, _ in actions} == {"token_create", "token_revoke"}
    assert all(user.startswith("cli:") for _, user in actions)


# -- the admin's card, in Chromium ------------------------------------------------------------------------

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
def test_an_admin_makes_and_revokes_a_token_in_the_page(browser: object, tmp_path: Path) -> None:
    expect = playwright_api.expect
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1)
    with serve(tmp_path, settings=settings, users={"boss": True}) as server:
        page = browser.new_page()  # type: ignore[attr-defined]
        try:
            page.goto(server.url + "/#/settings/tokens")
            page.fill("#signin-name", "boss")
            page.fill("#signin-password", PASSWORD)
            page.click("#signin-submit")
            card = page.locator("#tokens")
            expect(card).to_contain_text("No API tokens yet")
            page.fill("#new-token-name", "Orthanc main")
            page.click("#new-token button[type=submit]")
            secret = page.locator("#new-token-value")
            expect(secret).to_have_value(re.compile(r"^[A-Za-z0-9_-]{43}$"))
            token = secret.input_value()
            row = card.locator("tr", has_text="Orthanc main")
            expect(row).to_contain_text("In force")
            expect(row).to_contain_text("never")  # not used yet

            # The token works for a machine client at once...
            auth = {"Authorization": f"Bearer {token}"}
            assert httpx.get(server.url + "/dicom-web/studies", headers=auth).status_code in (200, 404)
            page.reload()
            expect(page.locator("#tokens tr", has_text="Orthanc main")).to_be_visible()
            assert token not in page.content()  # shown once only

            # ... and not after it is revoked.
            page.once("dialog", lambda dialog: dialog.accept())
            page.locator("#tokens tr", has_text="Orthanc main").get_by_role("button", name="Revoke").click()
            expect(page.locator("#tokens tr", has_text="Orthanc main")).to_contain_text("Revoked")
            assert httpx.get(server.url + "/dicom-web/studies", headers=auth).status_code == 401

            page.goto(server.url + "/#/audit")
            expect(page.locator(".audit-table")).to_contain_text("boss made the API token Orthanc main.")
            expect(page.locator(".audit-table")).to_contain_text("boss revoked the API token Orthanc main.")
        finally:
            page.close()
