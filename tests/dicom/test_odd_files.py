"""Odd files as real archives hold them: a Part 10 file cut right after its meta group, a raw implicit-VR
dataset whose first element is 66-90 bytes long, raw big-endian datasets without meta, ACR-NEMA dates
(`YYYY.MM.DD`) normalised so date filters and QIDO treat them as dates, and what pydicom would warn about
kept as a note that `pacsindex problems --kind note` shows."""

from __future__ import annotations

import json
import re
import struct
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from chromium import browser_fixture  # noqa: F401  (the "browser" fixture)
from conftest import make_dataset, run_cli, write_dicom
from pacsindex.dicom import read_header
from pacsindex.dicomweb import query as dicomweb
from pacsindex.index import store
from pacsindex.index.search import search
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalReader, LocalTree

PYDICOM_DATA = Path(pydicom.__file__).parent / "data" / "test_files"


def read(path: Path, fast: bool = True):  # type: ignore[no-untyped-def]
    return read_header(str(path), LocalReader().open, path.stat().st_size, path.name, fast=fast)


@pytest.mark.parametrize("fast", [True, False])
def test_a_file_cut_right_after_its_meta_group_is_truncated(tmp_path: Path, fast: bool) -> None:
    f = write_dicom(tmp_path / "IM1.dcm", PatientName="CUT^SHORT")
    data = f.read_bytes()
    (meta_length,) = struct.unpack_from("<I", data, 132 + 8)  # (0002,0000) group length, explicit VR UL
    f.write_bytes(data[: 132 + 12 + meta_length])
    r = read(f, fast)
    assert r.status == "error" and r.record is None
    assert r.reason == "truncated header: no data set after the file meta information"


@pytest.mark.parametrize("length", [66, 70, 80, 90])
def test_raw_implicit_vr_whose_first_element_is_66_to_90_bytes(tmp_path: Path, length: int) -> None:
    ds = make_dataset(PatientName="LENGTH^TEST")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a long code string: pydicom would rather we did not
        ds.ImageType = ["ORIGINAL", "PRIMARY", "X" * (length - len("ORIGINAL\\PRIMARY\\"))]
        f = write_dicom(tmp_path / "IMG0001", ds, preamble=False)
    assert struct.unpack_from("<HHI", f.read_bytes()) == (0x0008, 0x0008, length)  # the first element
    r = read(f)
    assert r.status == "dicom" and r.record is not None and r.record.PatientName == "LENGTH^TEST"
    assert r.record == read(f, fast=False).record


def test_raw_big_endian_datasets_without_meta_are_read(tmp_path: Path) -> None:
    r = read(PYDICOM_DATA / "ExplVR_BigEndNoMeta.dcm")  # pydicom's own test collection
    ref = pydicom.dcmread(PYDICOM_DATA / "ExplVR_BigEndNoMeta.dcm", force=True)
    assert r.status == "dicom" and r.record is not None
    assert r.record.StudyInstanceUID == ref.StudyInstanceUID and r.record.StudyDate == ref.StudyDate

    ds = make_dataset(PatientName="BIG^ENDIAN", Modality="MR")
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = False, False
    write_dataset(buf, ds)
    f = tmp_path / "BE0001"
    f.write_bytes(buf.getvalue())
    r = read(f)
    assert r.status == "dicom" and r.record is not None
    assert (r.record.PatientName, r.record.Modality) == ("BIG^ENDIAN", "MR")


def old_style(path: Path, study: str, born: str) -> Path:
    ds = make_dataset(PatientName="OLD^STYLE", StudyInstanceUID="1.2.12.3", SeriesInstanceUID="1.2.12.3.1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom says these are not DICOM dates: that is the point
        ds.StudyDate = study
        ds.PatientBirthDate = born
        return write_dicom(path, ds, preamble=False)  # an ACR-NEMA era raw dataset


def test_acr_nema_dates_are_dates_in_search_qido_and_dicom_json(tmp_path: Path) -> None:
    old_style(tmp_path / "archive" / "OLD" / "IMG0001", "1995.03.14", "1950.07.01")
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(tmp_path / "archive"))], ScanOptions(workers=1))
    with store.reading(db) as conn:
        (row,) = search(conn, "old", date_from="1995-03-01", date_to="1995-03-31")
        assert row["StudyDate"] == "19950314" and row["PatientBirthDate"] == "19500701"
        query = dicomweb.parse_query("study", [("StudyDate", "19950301-19950331")])
        (study,) = dicomweb.search(conn, query, "https://pacs/dicom-web").items
    assert study["00080020"] == {"vr": "DA", "Value": ["19950314"]}
    assert study["00100030"] == {"vr": "DA", "Value": ["19500701"]}

    notes = json.loads(run_cli("problems", "--kind", "note", "--db", str(db), "--json").stdout)
    assert [Path(n["path"]).name for n in notes] == ["IMG0001"]
    assert "StudyDate written the old way (YYYY.MM.DD)" in notes[0]["reason"]


def test_what_pydicom_warns_about_stays_as_a_note(tmp_path: Path) -> None:
    ds = make_dataset(PatientName="WARN^ME", charset="ISO_IR 999")  # a character set nobody knows
    ds.PatientName = "WÄRN^ME".encode("latin-1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = write_dicom(tmp_path / "archive" / "IM1.dcm", ds)
    r = read(f)
    assert r.status == "dicom" and r.note and "ISO_IR 999" in r.note
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(tmp_path / "archive"))], ScanOptions(workers=1))
    out = run_cli("problems", "--kind", "note", "--db", str(db))
    assert "IM1.dcm" in out.stdout and "ISO_IR 999" in out.stdout


def test_notes_are_a_kind_of_problem_in_the_web_api(tmp_path: Path) -> None:
    import httpx
    from argon2 import PasswordHasher

    from pacsindex.config.settings import Settings
    from pacsindex.web import create_app
    from pacsindex.web.server import ThreadedServer

    old_style(tmp_path / "archive" / "OLD" / "IMG0001", "1995.03.14", "1950.07.01")
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1)
    run_index(settings.db, [LocalTree(str(tmp_path / "archive"))], ScanOptions(workers=1))
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.state.pacsindex.accounts.add_user("it", "correct horse battery")
    with ThreadedServer(app, settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post(
            "/auth/signin", json={"name": "it", "password": "correct horse battery"}
        ).is_success
        page = client.get("/api/index/errors", params={"kind": "note"}).json()
        errors = client.get("/api/index/errors").json()
    assert [Path(i["path"]).name for i in page["items"]] == ["IMG0001"] and page["kind"] == "note"
    assert "read as a DICOM date" in page["items"][0]["reason"] and errors["items"] == []


playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
def test_the_problems_page_shows_files_read_with_a_note(browser: object, tmp_path: Path) -> None:
    from argon2 import PasswordHasher

    from pacsindex.config.settings import Settings
    from pacsindex.web import create_app
    from pacsindex.web.server import ThreadedServer

    expect = playwright_api.expect
    old_style(tmp_path / "archive" / "OLD" / "IMG0001", "1995.03.14", "1950.07.01")
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1)
    run_index(settings.db, [LocalTree(str(tmp_path / "archive"))], ScanOptions(workers=1))
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.state.pacsindex.accounts.add_user("it", "correct horse battery", admin=True)
    with ThreadedServer(app, settings) as server:
        page = browser.new_context().new_page()  # type: ignore[attr-defined]
        page.goto(server.url + "/")
        page.fill("#signin-name", "it")
        page.fill("#signin-password", "correct horse battery")
        page.keyboard.press("Enter")
        expect(page.locator("#who")).to_have_text("it")
        page.goto(server.url + "/#/problems")
        expect(page.locator(".problems")).to_contain_text("No unreadable files.")
        page.click("button[data-kind=note]")
        expect(page.locator(".problems-table td.path")).to_have_text([re.compile(r"IMG0001$")])
        expect(page.locator(".problems-table tbody td").nth(1)).to_contain_text("read as a DICOM date")


def test_an_unknown_character_set_and_a_date_that_is_not_one_are_notes_on_the_fast_path_too(
    tmp_path: Path,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = make_dataset(PatientName="ASCII^ONLY", charset="ISO_IR 999")
        ds.StudyDate = "2019-1-5"
        f = write_dicom(tmp_path / "IM1.dcm", ds)
    r = read(f)
    assert r.status == "dicom" and r.record is not None and r.record.PatientName == "ASCII^ONLY"
    assert r.note is not None and "unknown character set ISO_IR 999" in r.note
    assert "StudyDate is not a date as DICOM writes it" in r.note and r.record.StudyDate == "2019-1-5"
