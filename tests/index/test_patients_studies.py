"""Patients and studies as messy archives hold them: files with neither PatientName nor PatientID are not
merged into one patient; a StudyInstanceUID two patients share (a misfiled study) gives each patient their
own series whatever the file order, and is flagged in the API and, in real Chromium, on the page. An index
from before studies were keyed by patient is migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from chromium import browser_fixture  # noqa: F401  (the "browser" fixture)
from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.index import schema, store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

PASSWORD = "correct horse battery"
SHARED = "1.2.12.4.1"


def misfiled(root: Path, first: str) -> Path:
    """Two patients' series under one StudyInstanceUID; `first` says whose folder is read first."""
    people = {"a": ("DLAMINI^THANDI", "PID-D"), "b": ("PILLAY^RAJ", "PID-P")}
    for tag in (first, "b" if first == "a" else "a"):
        name, pid = people[tag]
        write_dicom(
            root / f"{0 if tag == first else 1}-{tag}" / "IM1.dcm",
            PatientName=name,
            PatientID=pid,
            StudyInstanceUID=SHARED,
            SeriesInstanceUID=f"{SHARED}.{1 if tag == 'a' else 2}",
            SeriesDescription=f"SERIES OF {pid}",
        )
    return root


def owners(db: Path) -> dict[str, tuple[str, int]]:
    with store.reading(db) as conn:
        rows = conn.execute(
            f"""SELECT s.SeriesDescription, p.PatientID, {store.STUDY_UID_SHARED}
                FROM series s JOIN studies st ON st.id = s.study_id JOIN patients p ON p.id = st.patient_id"""
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.mark.parametrize("first", ["a", "b"])
def test_a_shared_study_uid_keeps_each_series_with_its_patient_and_is_flagged(
    tmp_path: Path, first: str
) -> None:
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(misfiled(tmp_path / "archive", first)))], ScanOptions(workers=1))
    assert owners(db) == {"SERIES OF PID-D": ("PID-D", 1), "SERIES OF PID-P": ("PID-P", 1)}


def test_files_with_no_name_and_no_id_are_not_one_patient(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    for i in range(3):
        write_dicom(
            root / f"anon{i}" / "IM1.dcm",
            PatientName="",
            PatientID="",
            StudyInstanceUID=f"1.2.12.4.9.{i}",
            SeriesInstanceUID=f"1.2.12.4.9.{i}.1",
        )
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    with store.reading(db) as conn:
        assert conn.execute("SELECT count(*) FROM patients").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM series").fetchone()[0] == 3


def test_an_index_keyed_the_old_way_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    schema.migrate(conn, schema.MIGRATIONS[:5])  # the schema before this change
    conn.execute(
        "INSERT INTO patients (id, patient_key, PatientName) VALUES (1, ?, 'DLAMINI^THANDI')",
        ("PID-D\x1fDLAMINI^THANDI",),
    )
    conn.execute(
        "INSERT INTO studies (id, study_key, patient_id, StudyInstanceUID) VALUES (1, ?, 1, ?)",
        (SHARED, SHARED),
    )
    conn.execute("INSERT INTO series (SeriesKey, study_id, search_text) VALUES ('k', 1, ' dlamini thandi ')")
    conn.close()
    with store.reading(db) as c:  # a reader does not migrate...
        pass
    store.connect(db).close()  # ...the first writer does
    conn = sqlite3.connect(db)
    assert (
        conn.execute("SELECT study_key FROM studies").fetchone()[0] == f"PID-D\x1fDLAMINI^THANDI\x1e{SHARED}"
    )
    conn.close()
    # A later run adds its files to the same study, not a second one.
    write_dicom(
        tmp_path / "a" / "IM1.dcm", PatientName="DLAMINI^THANDI", PatientID="PID-D", StudyInstanceUID=SHARED
    )
    run_index(db, [LocalTree(str(tmp_path / "a"))], ScanOptions(workers=1))
    with store.reading(db) as c:
        assert c.execute("SELECT count(*) FROM studies").fetchone()[0] == 1


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1)
    run_index(settings.db, [LocalTree(str(misfiled(tmp_path / "archive", "a")))], ScanOptions(workers=1))
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.state.pacsindex.accounts.add_user("reception", PASSWORD)
    with ThreadedServer(app, settings) as server:
        yield server


def test_the_api_flags_the_shared_study(served) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=served.url, timeout=30) as client:
        assert (
            client.post("/auth/signin", json={"name": "reception", "password": PASSWORD}).status_code == 200
        )
        rows = client.get("/api/search", params={"q": "series of"}).json()
        assert {(r["PatientID"], r["study_uid_shared"]) for r in rows} == {("PID-D", True), ("PID-P", True)}
        detail = client.get(f"/api/series/{rows[0]['SeriesKey']}").json()
        assert detail["study_uid_shared"] is True


playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
def test_the_page_shows_the_shared_study_badge(browser: object, served) -> None:  # type: ignore[no-untyped-def]
    expect = playwright_api.expect
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()  # type: ignore[attr-defined]
    page.goto(served.url + "/")
    page.fill("#signin-name", "reception")
    page.fill("#signin-password", PASSWORD)
    page.keyboard.press("Enter")
    page.fill("#q", "series of")
    page.click("#search-button")
    expect(page.locator(".patient h3")).to_have_count(2)
    badges = page.locator(".study .badge.study-shared")
    expect(badges).to_have_count(2)
    expect(badges.first).to_have_text("⚠ Study UID shared with another patient")
    page.locator(".series-link").first.click()
    expect(page.locator("#series-study-shared")).to_be_visible()
