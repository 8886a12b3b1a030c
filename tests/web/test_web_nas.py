"""The NAS settings API over a real socket against a real Samba server: admins only, clear 4xx answers to
bad settings, a write-only password kept in an owner-only file, connection tests that list the share or say
what is wrong, and saved settings that make the NAS the default indexing root."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions
from pacsindex.sources.files import reader_for
from pacsindex.sources.smb import reader as smb
from samba_server import (
    SambaServer,
    free_port,
    samba_fixture,  # noqa: F401  (the "samba" fixture)
)
from support_wait import wait_until
from support_web import LiveServer

FOLDER = "webnas"  # this module's folder in the shared test share

pytestmark = pytest.mark.samba


@dataclass
class Live:
    url: str
    data_dir: Path
    admin: httpx.Client
    staff: httpx.Client
    admin_csrf: dict[str, str]
    staff_csrf: dict[str, str]
    samba: SambaServer
    settings: Settings

    def nas(self, **changes: Any) -> dict[str, Any]:
        """Good settings for the test share, with `changes`."""
        good = {
            "host": "127.0.0.1",
            "port": self.samba.port,
            "share": "archive",
            "path": FOLDER,
            "user": self.samba.user,
            "password": self.samba.password,
        }
        return {**good, **changes}

    def put(self, body: dict[str, Any]) -> httpx.Response:
        return self.admin.put("/api/settings/nas", json=body, headers=self.admin_csrf)

    def test(self, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.admin.post("/api/settings/nas/test", json=body, headers=self.admin_csrf)


@pytest.fixture(scope="module")
def live(
    samba: SambaServer, live_server: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    folder = samba.shares["archive"] / FOLDER
    for i in range(3):
        write_dicom(
            folder / "NKOSI" / f"IM{i}.dcm",
            PatientName="NKOSI^THABO",
            PatientID="NAS-1",
            SeriesInstanceUID="1.2.840.99.1",
            InstanceNumber=i + 1,
        )
    write_dicom(
        folder / "DLAMINI" / "IM0.dcm",
        PatientName="DLAMINI^ZANELE",
        PatientID="NAS-2",
        StudyInstanceUID="1.2.840.99.2",
        SeriesInstanceUID="1.2.840.99.2.1",
    )
    base = tmp_path_factory.mktemp("web-nas")
    settings = Settings(db=base / "pacsindex.db", data_dir=base / "data", workers=1, smb_connect_timeout=10)
    smb.close_connections()
    server = live_server(
        settings=settings,
        users={"admin": True, "staff": False},
        scan_options=ScanOptions(workers=1, commit_seconds=0.0, progress_seconds=0.0),
    )
    admin, admin_csrf = server.sign_in("admin")
    staff, staff_csrf = server.sign_in("staff")
    yield Live(server.url, base / "data", admin, staff, admin_csrf, staff_csrf, samba, settings)
    smb.close_connections()


def test_only_admins_see_or_change_the_nas_settings(live: Live) -> None:
    assert live.staff.get("/api/settings/nas").status_code == 403
    assert live.staff.put("/api/settings/nas", json=live.nas(), headers=live.staff_csrf).status_code == 403
    tested = live.staff.post("/api/settings/nas/test", json=live.nas(), headers=live.staff_csrf)
    assert tested.status_code == 403
    with httpx.Client(base_url=live.url) as anonymous:
        assert anonymous.get("/api/settings/nas").status_code == 401
    assert live.admin.put("/api/settings/nas", json=live.nas()).status_code == 403  # no CSRF token
    assert not (live.data_dir / "nas.json").exists()
    empty = live.admin.get("/api/settings/nas").json()
    assert empty["configured"] is False and empty["password_set"] is False and empty["url"] is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"host": ""}, "required: host"),
        ({"user": "  "}, "required: user"),
        ({"share": ""}, "required: share"),
        ({"host": "\\\\nas\\Image Archiving"}, "just the NAS's name"),
        ({"host": "smb://nas"}, "just the NAS's name"),
        ({"host": "nas_01.clinic..local"}, "not a host name"),
        ({"host": "999.1.1.1"}, "not a host name"),
        ({"share": "Image/Archiving"}, "not a share name"),
        ({"share": "a:b"}, "not a share name"),
        ({"path": "2019/../../etc"}, "'..' is not allowed"),
        ({"path": "..\\secrets"}, "'..' is not allowed"),
        ({"path": "2019/a|b"}, "cannot have"),
        ({"port": 0}, "between 1 and 65535"),
        ({"port": 70000}, "between 1 and 65535"),
        ({"domain": "CLINIC\\X"}, "not a domain name"),
    ],
)
def test_bad_settings_get_a_clear_4xx_and_nothing_is_saved(live: Live, changes: dict, words: str) -> None:
    for r in (live.put(live.nas(**changes)), live.test(live.nas(**changes))):
        assert r.status_code == 400, (changes, r.status_code, r.text)
        assert words in r.json()["detail"]
    assert not (live.data_dir / "nas.json").exists()


def test_missing_or_mistyped_fields_are_422(live: Live) -> None:
    body = live.nas()
    del body["host"]
    assert live.put(body).status_code == 422
    assert live.put(live.nas(port="four")).status_code == 422
    assert live.put(live.nas(colour="blue")).status_code == 422


def test_connection_test_lists_the_share_without_saving(live: Live) -> None:
    r = live.test(live.nas())
    assert r.status_code == 200, r.text
    assert r.json() == {
        "url": f"smb://127.0.0.1:{live.samba.port}/archive/{FOLDER}",
        "entries": ["DLAMINI/", "NKOSI/"],
    }
    root = live.test(live.nas(path=""))
    assert root.status_code == 200 and f"{FOLDER}/" in root.json()["entries"]
    assert not (live.data_dir / "nas.json").exists()
    tests = live.admin.get("/api/audit", params={"action": "nas_test"}).json()
    assert tests and tests[0]["user"] == "admin" and tests[0]["detail"]["outcome"] == "ok"


def test_a_wrong_password_or_a_closed_port_says_what_is_wrong(live: Live) -> None:
    wrong = live.test(live.nas(password="not-the-password"))
    assert wrong.status_code == 400
    assert "refused the login" in wrong.json()["detail"] and "pacstest" in wrong.json()["detail"]
    closed = free_port()
    refused = live.test(live.nas(port=closed))
    assert refused.status_code == 502
    assert f"connection refused on port {closed}" in refused.json()["detail"]
    missing = live.test(live.nas(share="no-such-share"))
    assert missing.status_code == 400 and "has no share named 'no-such-share'" in missing.json()["detail"]
    folder = live.test(live.nas(path="not/there"))
    assert folder.status_code == 400 and "no folder 'not/there'" in folder.json()["detail"]
    for r in (wrong, refused, missing, folder):
        assert "not-the-password" not in r.text and live.samba.password not in r.text
    tests = live.admin.get("/api/audit", params={"action": "nas_test"}).json()
    outcomes = {e["detail"]["outcome"] for e in tests}
    assert {"AuthenticationFailed", "SourceUnreachable", "ShareNotFound"} <= outcomes


def test_the_password_is_write_only_and_kept_owner_only(live: Live) -> None:
    r = live.put(live.nas(domain="CLINIC"))
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["password_set"] is True and "password" not in shown and shown["domain"] == "CLINIC"
    assert shown["url"] == f"smb://127.0.0.1:{live.samba.port}/archive/{FOLDER}"
    got = live.admin.get("/api/settings/nas")
    assert got.json() == shown and live.samba.password not in got.text
    stored = live.data_dir / "nas.json"
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert live.samba.password in stored.read_text(encoding="utf-8")

    # Saving without a password keeps it; the saved settings test fine without a body.
    kept = live.put({k: v for k, v in live.nas(domain="").items() if k != "password"})
    assert kept.status_code == 200 and kept.json()["password_set"] is True
    assert live.test().json()["entries"] == ["DLAMINI/", "NKOSI/"]
    # Testing other values without a password uses the saved one for the same NAS.
    untyped = {k: v for k, v in live.nas(path="").items() if k != "password"}
    assert f"{FOLDER}/" in live.test(untyped).json()["entries"]

    cleared = live.put({**live.nas(), "password": None, "clear_password": True})
    assert cleared.json()["password_set"] is False
    assert live.samba.password not in stored.read_text(encoding="utf-8")
    assert live.put(live.nas()).json()["password_set"] is True

    entries = live.admin.get("/api/audit", params={"action": "nas_settings"}).json()
    assert {e["detail"]["password"] for e in entries} >= {"set", "kept", "cleared"}
    audit_text = live.admin.get("/api/audit").text
    assert live.samba.password not in audit_text


def test_saved_nas_is_indexed_by_a_start_without_roots(live: Live) -> None:
    assert live.put(live.nas()).status_code == 200
    r = live.staff.post("/api/index/start", headers=live.staff_csrf)  # staff may start the default roots
    assert r.status_code == 202, r.text
    url = f"smb://127.0.0.1:{live.samba.port}/archive/{FOLDER}"
    assert r.json()["roots"] == [url]
    # The page's indexing panel offers what /api/me lists: the saved NAS is among them.
    assert live.admin.get("/api/me").json()["roots"] == [url]
    assert live.admin.get("/api/settings").json()["roots"] == [url]

    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = live.admin.get("/api/index/status").json()
        return None if status["running"] else status

    status = wait_until(ended, 120, "the run to end")
    assert status["state"] == "completed", status
    assert status["files_read"] == 4 and status["errors"] == 0
    found = live.staff.get("/api/search", params={"q": "nkosi"}).json()
    assert [r["PatientName"] for r in found] == ["NKOSI^THABO"] and found[0]["file_count"] == 3
    series = live.staff.get(f"/api/series/{found[0]['SeriesKey']}").json()
    assert all(f["path"].startswith(url + "/NKOSI/") for f in series["files"])
    assert live.samba.password not in live.admin.get("/api/index/status").text


def test_the_saved_account_opens_nas_files_for_share_links_and_the_cli(live: Live) -> None:
    assert live.put(live.nas()).status_code == 200
    url = f"smb://127.0.0.1:{live.samba.port}/archive/{FOLDER}/NKOSI/IM0.dcm"
    assert live.settings.smb_user == ""  # nothing in the environment: the saved settings log in
    with reader_for(url, live.settings).open(url) as fh:
        assert fh.read(132)[128:] == b"DICM"
    other = smb.SmbTree.from_url(f"smb://nas.elsewhere/{FOLDER}", live.settings)
    assert other.creds == smb.SmbCredentials()  # another NAS never gets this password


def test_forgetting_the_nas_removes_the_root_and_the_password(live: Live) -> None:
    assert live.put(live.nas()).status_code == 200
    r = live.admin.delete("/api/settings/nas", headers=live.admin_csrf)
    assert r.status_code == 200 and r.json()["configured"] is False
    assert not (live.data_dir / "nas.json").exists()
    assert live.admin.delete("/api/settings/nas", headers=live.admin_csrf).status_code == 404
    assert live.test().status_code == 404
    nothing = live.admin.post("/api/index/start", headers=live.admin_csrf)
    assert nothing.status_code == 400 and "nothing to index" in nothing.json()["detail"]
