"""A real Orthanc (with its DICOMweb plugin) set up with pacsindex as a remote DICOMweb server, as a practice
would: it searches pacsindex (QIDO-RS) and retrieves a series and a study into its own storage (WADO-RS),
signing in with an API token as the Basic password or as a Bearer header. What Orthanc stores is the
archive's files, byte for byte; a wrong token gets nothing; the audit log names the token."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from argon2 import PasswordHasher

from conftest import write_dicom
from orthanc_server import OrthancServer, orthanc_problem, start_orthanc
from pacsindex.accounts.audit import AuditLog
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

STUDY_UID, SERIES_UID, PATIENT_NAME = "0020000D", "0020000E", "00100010"


@dataclass
class Peers:
    orthanc: OrthancServer
    archive: Path
    audit: AuditLog

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.orthanc.request("POST", path, json.dumps(body).encode(), timeout=120)

    def files(self, *folders: str) -> dict[str, bytes]:
        """SOPInstanceUID → bytes of the archive's files in these folders."""
        out = {}
        for folder in folders:
            for path in sorted((self.archive / folder).iterdir()):
                out[pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID] = path.read_bytes()
        return out

    def stored(self) -> dict[str, bytes]:
        """SOPInstanceUID → bytes of every instance Orthanc holds."""
        out = {}
        for orthanc_id in self.orthanc.get("/instances"):
            uid = self.orthanc.get(f"/instances/{orthanc_id}/simplified-tags")["SOPInstanceUID"]
            out[uid] = self.orthanc_file(orthanc_id)
        return out

    def orthanc_file(self, orthanc_id: str) -> bytes:
        req = urllib.request.Request(f"{self.orthanc.url}/instances/{orthanc_id}/file")
        auth = base64.b64encode(f"{self.orthanc.user}:{self.orthanc.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {auth}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bytes(resp.read())


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    problem = orthanc_problem()
    if problem:
        pytest.fail(problem)  # make test installs Orthanc: a missing one is a broken setup, not a skip
    base = tmp_path_factory.mktemp("dicomweb-orthanc")
    archive = base / "archive"
    for i in range(4):
        write_dicom(
            archive / "ct" / f"IM{i}.dcm",
            PatientName="MÜLLER^HANS",
            PatientID="PID-M",
            charset="ISO_IR 100",
            StudyInstanceUID="1.8.1",
            SeriesInstanceUID="1.8.1.1",
            InstanceNumber=i + 1,
            rows=32,
        )
    for i in range(2):
        write_dicom(
            archive / "scout" / f"IM{i}.dcm",
            PatientName="MÜLLER^HANS",
            PatientID="PID-M",
            charset="ISO_IR 100",
            StudyInstanceUID="1.8.1",
            SeriesInstanceUID="1.8.1.2",
            SeriesNumber=2,
            SeriesDescription="SCOUT",
            InstanceNumber=i + 1,
        )
    write_dicom(
        archive / "other" / "IM0.dcm",
        PatientName="DLAMINI^SIPHO",
        PatientID="PID-D",
        StudyInstanceUID="1.8.2",
        SeriesInstanceUID="1.8.2.1",
        Modality="MR",
        StudyDate="20210910",
    )
    settings = Settings(db=base / "pacsindex.db", workers=1)
    run_index(settings.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    _, token = app.state.apitokens.create("Orthanc main", "boss")
    with ThreadedServer(app, settings) as server:
        root = server.url + "/dicom-web/"
        servers = {
            # Basic: user name anything, the token as the password (Orthanc's usual form)
            "pacsindex": [root, "orthanc", token],
            # or the token in an Authorization header
            "pacsindex-bearer": {"Url": root, "HttpHeaders": {"Authorization": f"Bearer {token}"}},
            "pacsindex-wrong": [root, "orthanc", "not-a-token"],
        }
        orthanc = start_orthanc(base / "orthanc", extra_config={"DicomWeb": {"Servers": servers}})
        try:
            yield Peers(orthanc, archive, app.state.pacsindex.audit)
        finally:
            orthanc.stop()


def test_orthanc_searches_pacsindex(peers: Peers) -> None:
    for server in ("pacsindex", "pacsindex-bearer"):
        found = peers.post(
            f"/dicom-web/servers/{server}/get", {"Uri": "/studies", "Arguments": {"PatientName": "muller*"}}
        )
        assert [s[STUDY_UID]["Value"] for s in found] == [["1.8.1"]]
        assert found[0][PATIENT_NAME]["Value"] == [{"Alphabetic": "MÜLLER^HANS"}]
        assert found[0]["00201206"]["Value"] == [2] and found[0]["00201208"]["Value"] == [6]
    by_date = peers.post(
        "/dicom-web/servers/pacsindex/get",
        {"Uri": "/studies", "Arguments": {"StudyDate": "20210101-20211231", "ModalitiesInStudy": "MR"}},
    )
    assert [s[STUDY_UID]["Value"][0] for s in by_date] == ["1.8.2"]
    series = peers.post("/dicom-web/servers/pacsindex/get", {"Uri": "/studies/1.8.1/series"})
    assert {s[SERIES_UID]["Value"][0] for s in series} == {"1.8.1.1", "1.8.1.2"}


def test_orthanc_retrieves_a_series_and_a_study_byte_for_byte(peers: Peers) -> None:
    peers.orthanc.clear()
    got = peers.post(
        "/dicom-web/servers/pacsindex/retrieve", {"Resources": [{"Study": "1.8.1", "Series": "1.8.1.1"}]}
    )
    assert int(got["ReceivedInstancesCount"]) == 4
    assert peers.stored() == peers.files("ct")  # what Orthanc keeps is the archive's files as they are

    peers.orthanc.clear()
    got = peers.post("/dicom-web/servers/pacsindex-bearer/retrieve", {"Resources": [{"Study": "1.8.1"}]})
    assert int(got["ReceivedInstancesCount"]) == 6
    assert peers.stored() == peers.files("ct", "scout")

    peers.audit.flush(10)
    entries = peers.audit.entries(user="token:Orthanc main", action="dicomweb_retrieve")
    assert {(e["detail"]["what"], e["detail"].get("SeriesInstanceUID")) for e in entries} >= {
        ("series", "1.8.1.1"),
        ("study", None),
    }


def test_a_wrong_token_gets_orthanc_nothing(peers: Peers) -> None:
    peers.orthanc.clear()
    with pytest.raises(urllib.error.HTTPError):
        peers.post("/dicom-web/servers/pacsindex-wrong/get", {"Uri": "/studies"})
    try:
        got = peers.post("/dicom-web/servers/pacsindex-wrong/retrieve", {"Resources": [{"Study": "1.8.2"}]})
    except urllib.error.HTTPError:
        got = None
    assert got is None or int(got["ReceivedInstancesCount"]) == 0
    assert peers.orthanc.get("/instances") == []
