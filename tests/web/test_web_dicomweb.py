"""DICOMweb over a real socket, with a real client: the `dicomweb-client` package (as scripts and AI tools
use it) searches and retrieves with an API token an admin made in the API, and gets back the archive's
files byte for byte. Also: HTTP Basic with the token, a staff browser session, 401 with a challenge,
400 with a reason, 404 for unknown UIDs, 406, revoked tokens, and the audit log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from support_dicomweb import parse_multipart
from support_web import LiveServer

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"


@dataclass
class Live:
    url: str
    admin: httpx.Client
    csrf: dict[str, str]
    staff: httpx.Client
    token: str
    token_id: int
    archive: Path
    audit: object

    @property
    def dicomweb(self) -> str:
        return self.url + "/dicom-web"

    def client(self, token: str | None = None) -> DICOMwebClient:
        return DICOMwebClient(url=self.dicomweb, headers={"Authorization": f"Bearer {token or self.token}"})

    def files(self, series_folder: str) -> dict[str, bytes]:
        """SOPInstanceUID → bytes of every file in one series folder of the archive."""
        out = {}
        for path in sorted((self.archive / series_folder).iterdir()):
            out[pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID] = path.read_bytes()
        return out


@pytest.fixture(scope="module")
def live(live_server: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory) -> Live:
    base = tmp_path_factory.mktemp("web-dicomweb")
    archive = base / "archive"
    for i in range(3):
        write_dicom(
            archive / "muller-ct" / f"IM{i}.dcm",
            PatientName="MÜLLER^HANS",
            PatientID="PID-M",
            charset="ISO_IR 100",
            StudyInstanceUID="1.7.1",
            SeriesInstanceUID="1.7.1.1",
            InstanceNumber=i + 1,
            rows=64,
        )
    write_dicom(
        archive / "muller-sr" / "IM0.dcm",
        PatientName="MÜLLER^HANS",
        PatientID="PID-M",
        charset="ISO_IR 100",
        StudyInstanceUID="1.7.1",
        SeriesInstanceUID="1.7.1.2",
        SeriesNumber=2,
        Modality="SR",
    )
    for i in range(2):
        write_dicom(
            archive / "naidoo-mr" / f"IM{i}.dcm",
            PatientName="NAIDOO^PRIYA",
            PatientID="PID-N",
            StudyInstanceUID="1.7.2",
            SeriesInstanceUID="1.7.2.1",
            Modality="MR",
            StudyDate="20190704",
            AccessionNumber="ACC-N",
            InstanceNumber=i + 1,
        )
    settings = Settings(db=base / "pacsindex.db", workers=1)
    run_index(settings.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    server = live_server(settings=settings, users={"boss": True, "reception": False})
    admin, csrf = server.sign_in("boss")
    staff, _ = server.sign_in("reception")
    made = admin.post("/api/tokens", json={"name": "Orthanc main"}, headers=csrf)
    assert made.status_code == 201, made.text
    return Live(
        server.url,
        admin,
        csrf,
        staff,
        made.json()["token"],
        made.json()["id"],
        archive,
        server.app.state.pacsindex.audit,
    )


def test_an_admin_makes_a_token_shown_once(live: Live) -> None:
    listed = live.admin.get("/api/tokens").json()
    mine = next(t for t in listed if t["id"] == live.token_id)
    assert mine["name"] == "Orthanc main" and mine["created_by"] == "boss" and mine["active"]
    assert live.token not in live.admin.get("/api/tokens").text  # never shown again
    again = live.admin.post("/api/tokens", json={"name": "orthanc MAIN"}, headers=live.csrf)
    assert again.status_code == 409  # names are unique among tokens in force
    assert live.admin.post("/api/tokens", json={"name": "x"}).status_code == 403  # no CSRF token
    # Staff may use DICOMweb in the browser but not manage tokens.
    assert live.staff.get("/api/tokens").status_code == 403
    staff_csrf = {"X-CSRF-Token": live.staff.get("/api/me").json()["csrf_token"]}
    assert live.staff.post("/api/tokens", json={"name": "mine"}, headers=staff_csrf).status_code == 403


def test_dicomweb_client_searches(live: Live) -> None:
    client = live.client()
    found = client.search_for_studies(search_filters={"PatientName": "muller*"})
    assert [s[STUDY_UID]["Value"] for s in found] == [["1.7.1"]]
    assert found[0]["00100010"]["Value"] == [{"Alphabetic": "MÜLLER^HANS"}]
    assert found[0]["00080061"]["Value"] == ["CT", "SR"] and found[0]["00201208"]["Value"] == [4]
    # dicomweb-client sends its own Host header without the port; RetrieveURL follows the Host asked for.
    assert found[0]["00081190"]["Value"][0].endswith("/dicom-web/studies/1.7.1")
    direct = httpx.get(f"{live.dicomweb}/studies", headers={"Authorization": f"Bearer {live.token}"})
    assert direct.json()[0]["00081190"]["Value"] == [f"{live.dicomweb}/studies/1.7.1"]
    assert client.search_for_studies(search_filters={"PatientName": "*PRIYA"})[0][STUDY_UID]["Value"] == [
        "1.7.2"
    ]
    by_date = client.search_for_studies(search_filters={"StudyDate": "20190101-20191231"})
    assert [s[STUDY_UID]["Value"][0] for s in by_date] == ["1.7.2"]
    assert [
        s[STUDY_UID]["Value"][0]
        for s in client.search_for_studies(search_filters={"ModalitiesInStudy": "SR"})
    ] == ["1.7.1"]
    assert client.search_for_studies(search_filters={"AccessionNumber": "ACC-N", "PatientID": "PID-M"}) == []
    first, second = (client.search_for_studies(limit=1, offset=n) for n in (0, 1))
    assert {first[0][STUDY_UID]["Value"][0], second[0][STUDY_UID]["Value"][0]} == {"1.7.1", "1.7.2"}
    assert client.search_for_studies(get_remaining=True, limit=1) and len(client.search_for_studies()) == 2

    series = client.search_for_series(study_instance_uid="1.7.1")
    assert {s[SERIES_UID]["Value"][0] for s in series} == {"1.7.1.1", "1.7.1.2"}
    assert [
        s[SERIES_UID]["Value"][0] for s in client.search_for_series(search_filters={"Modality": "MR"})
    ] == ["1.7.2.1"]
    instances = client.search_for_instances(study_instance_uid="1.7.1", series_instance_uid="1.7.1.1")
    assert {i[SOP_UID]["Value"][0] for i in instances} == set(live.files("muller-ct"))
    assert [i["00200013"]["Value"][0] for i in instances] == [1, 2, 3]


def test_dicomweb_client_retrieves_the_files(live: Live) -> None:
    client = live.client()
    files = live.files("muller-ct")
    got = client.retrieve_series("1.7.1", "1.7.1.1")
    assert {ds.SOPInstanceUID for ds in got} == set(files)
    for ds in got:
        assert ds.PixelData == pydicom.dcmread(live.archive / "muller-ct" / "IM0.dcm").PixelData
    study = client.retrieve_study("1.7.1")
    assert len(study) == 4 and {ds.SeriesInstanceUID for ds in study} == {"1.7.1.1", "1.7.1.2"}
    sop = next(iter(files))
    one = client.retrieve_instance("1.7.1", "1.7.1.1", sop)
    assert one.SOPInstanceUID == sop and one.PatientName == "MÜLLER^HANS"
    meta = client.retrieve_series_metadata("1.7.1", "1.7.1.1")
    assert {m[SOP_UID]["Value"][0] for m in meta} == set(files)
    assert all(set(m["7FE00010"]) == {"vr", "BulkDataURI"} for m in meta)  # no pixel data inline
    assert client.retrieve_instance_metadata(
        "1.7.2", "1.7.2.1", client.search_for_instances("1.7.2")[0][SOP_UID]["Value"][0]
    )["00100020"]["Value"] == ["PID-N"]

    # Byte for byte: the multipart body holds exactly the archive's files.
    r = httpx.get(
        f"{live.dicomweb}/studies/1.7.1/series/1.7.1.1", headers={"Authorization": f"Bearer {live.token}"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        'multipart/related; type="application/dicom"'
    )
    assert r.headers["cache-control"] == "no-store"
    assert sorted(parse_multipart(r.content, r.headers["content-type"])) == sorted(files.values())


def test_one_instance_as_a_bare_file_and_by_wado_uri(live: Live) -> None:
    h = {"Authorization": f"Bearer {live.token}"}
    sop, data = next(iter(live.files("naidoo-mr").items()))
    url = f"{live.dicomweb}/studies/1.7.2/series/1.7.2.1/instances/{sop}"
    bare = httpx.get(url, headers={**h, "Accept": "application/dicom"})
    assert bare.status_code == 200 and bare.headers["content-type"] == "application/dicom"
    assert bare.content == data
    params = {"requestType": "WADO", "studyUID": "1.7.2", "seriesUID": "1.7.2.1", "objectUID": sop}
    wado = httpx.get(f"{live.dicomweb}/wado", params=params, headers=h)
    assert wado.status_code == 200 and wado.content == data
    unknown = {**params, "objectUID": "9.9"}
    assert httpx.get(f"{live.dicomweb}/wado", params=unknown, headers=h).status_code == 404
    assert httpx.get(f"{live.dicomweb}/wado", params=params).status_code == 401
    jpeg = {**params, "contentType": "image/jpeg"}
    assert httpx.get(f"{live.dicomweb}/wado", params=jpeg, headers=h).status_code == 400


def test_http_basic_with_the_token_as_password(live: Live) -> None:
    session = requests.Session()
    session.auth = ("Orthanc main", live.token)
    client = DICOMwebClient(url=live.dicomweb, session=session)
    assert len(client.search_for_studies()) == 2
    session.auth = ("anyone", live.token)
    assert len(client.retrieve_series("1.7.2", "1.7.2.1")) == 2
    session.auth = ("Orthanc main", "not-the-token")
    with pytest.raises(requests.HTTPError) as err:
        client.search_for_studies()
    assert err.value.response.status_code == 401


def test_a_staff_browser_session_may_read(live: Live) -> None:
    r = live.staff.get("/dicom-web/studies", params={"PatientID": "PID-N"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom+json"
    assert r.json()[0][STUDY_UID]["Value"] == ["1.7.2"]
    assert live.staff.get("/dicom-web/studies/1.7.2/series/1.7.2.1").status_code == 200


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Bearer", "Basic !!!", "Digest abc"])
def test_no_valid_token_is_401_with_a_challenge(live: Live, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    for path in ("/dicom-web/studies", "/dicom-web/studies/1.7.1/series/1.7.1.1", "/dicom-web/studies/9.9"):
        r = httpx.get(live.url + path, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert "Bearer" in r.headers["www-authenticate"] and "Basic" in r.headers["www-authenticate"]
        assert r.json()["detail"]


def test_bad_queries_unknown_uids_and_media_types(live: Live) -> None:
    h = {"Authorization": f"Bearer {live.token}"}

    def get(path: str, **kw: object) -> httpx.Response:
        return httpx.get(live.dicomweb + path, headers={**h, **kw.pop("headers", {})}, **kw)  # type: ignore[arg-type]

    for params, reason in (
        ({"StudyDate": "15/01/2024"}, "YYYYMMDD"),
        ({"limit": "-3"}, "limit"),
        ({"Nonsense": "1"}, "not a DICOM attribute"),
        ({"includefield": "NoSuchKeyword"}, "includefield"),
    ):
        r = get("/studies", params=params)
        assert r.status_code == 400 and reason in r.json()["detail"], r.text
    for path in (
        "/studies/9.9.9/series",
        "/studies/1.7.1/series/9.9/instances",
        "/studies/9.9.9",
        "/studies/1.7.1/series/1.7.2.1",  # a series of another study
        "/studies/1.7.1/series/1.7.1.1/instances/9.9",
        "/studies/1.7.1/series/1.7.1.1/metadata".replace("1.7.1.1", "9"),
    ):
        r = get(path)
        assert r.status_code == 404 and "UID" in r.json()["detail"], (path, r.text)
    assert get("/studies/1.7.1", headers={"Accept": "image/jpeg"}).status_code == 406
    assert get("/studies", headers={"Accept": "application/dicom+xml"}).status_code == 406
    many = get("/studies", params={"limit": "5000"})
    assert many.status_code == 200 and "299" in many.headers["warning"]


def test_revoking_a_token_locks_its_client_out(live: Live) -> None:
    made = live.admin.post("/api/tokens", json={"name": "Weasis laptop"}, headers=live.csrf).json()
    client = live.client(made["token"])
    assert len(client.search_for_studies()) == 2
    r = live.admin.post(f"/api/tokens/{made['id']}/revoke", headers=live.csrf)
    assert r.status_code == 200 and not r.json()["active"] and r.json()["revoked_at"]
    with pytest.raises(requests.HTTPError) as err:
        client.search_for_studies()
    assert err.value.response.status_code == 401 and "revoked" in err.value.response.json()["detail"]
    assert live.admin.post("/api/tokens/999999/revoke", headers=live.csrf).status_code == 404
    # The name is free again for a new token.
    assert (
        live.admin.post("/api/tokens", json={"name": "Weasis laptop"}, headers=live.csrf).status_code == 201
    )


def test_the_audit_log_says_which_token_did_what(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        client = live.client()
        client.search_for_studies(search_filters={"PatientName": "naidoo*"})
        client.retrieve_series("1.7.2", "1.7.2.1")
        live.staff.get("/dicom-web/studies/1.7.1/metadata")
    made = live.admin.post("/api/tokens", json={"name": "Weasis trial"}, headers=live.csrf).json()
    assert live.admin.post(f"/api/tokens/{made['id']}/revoke", headers=live.csrf).status_code == 200
    live.audit.flush(10)  # type: ignore[attr-defined]
    entries = live.admin.get("/api/audit", params={"limit": 500}).json()
    query = next(e for e in entries if e["action"] == "dicomweb_query" and e["detail"].get("PatientName"))
    assert query["user"] == "token:Orthanc main" and query["detail"]["PatientName"] == "naidoo*"
    assert query["detail"]["level"] == "study" and query["client"] == "127.0.0.1"
    got = next(e for e in entries if e["action"] == "dicomweb_retrieve" and e["user"] == "token:Orthanc main")
    assert got["detail"]["StudyInstanceUID"] and got["detail"]["what"] in ("series", "study", "instance")
    series = [
        e["detail"]
        for e in entries
        if e["action"] == "dicomweb_retrieve" and e["detail"].get("what") == "series"
    ]
    assert {
        "StudyInstanceUID": "1.7.2",
        "SeriesInstanceUID": "1.7.2.1",
        "PatientID": "PID-N",
        "files": 2,
        "what": "series",
    } in series
    assert any(e["user"] == "reception" and e["detail"].get("what") == "study metadata" for e in entries)
    assert any(e["action"] == "token_create" and e["user"] == "boss" for e in entries)
    assert any(e["action"] == "token_revoke" for e in entries)
    # The server's log names no patient and shows no token. (Left out: this test's clients, and uvicorn's
    # access log, which pacsindex turns off; pytest listens to it anyway.)
    clients = ("httpx", "httpcore", "dicomweb_client", "urllib3", "uvicorn.access")
    server = [r for r in caplog.records if r.levelno >= logging.INFO and not r.name.startswith(clients)]
    text = "\n".join(r.getMessage() for r in server)
    assert "/dicom-web/studies" in text
    for secret in ("NAIDOO", "naidoo", "MÜLLER", live.token):
        assert secret not in text
