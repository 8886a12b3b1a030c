"""The Orthanc API over a real socket (uvicorn in a thread, httpx as the client) against a real Orthanc:
only admins see and change the settings, the password never comes back, Test connection names the Orthanc
or says what is wrong, a send started by staff runs in the background to completion with progress, a second
send adds nothing, and all of it is in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from orthanc_server import OrthancServer, orthanc_fixture  # noqa: F401 - the `orthanc` fixture
from pacsindex.config.settings import Settings
from support_orthanc import closed_port, index, make_series, series_key, sop_uids
from support_wait import wait_until
from support_web import LiveServer

pytestmark = pytest.mark.orthanc

SERIES_UID = "1.2.826.99.7.1"


@dataclass
class Live:
    url: str
    admin: httpx.Client
    staff: httpx.Client
    admin_csrf: dict[str, str]
    staff_csrf: dict[str, str]
    db: Path
    key: str


@pytest.fixture(scope="module")
def live(live_server: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory) -> Live:
    base = tmp_path_factory.mktemp("web-orthanc")
    db = base / "pacsindex.db"
    make_series(base / "archive", SERIES_UID, 8, name="DLAMINI^ZANELE")
    index(db, base / "archive")
    server = live_server(settings=Settings(db=db, workers=1), users={"admin": True, "sipho": False})
    admin, admin_csrf = server.sign_in("admin")
    staff, staff_csrf = server.sign_in("sipho")
    return Live(server.url, admin, staff, admin_csrf, staff_csrf, db, series_key(db, SERIES_UID))


def audit(live: Live, action: str) -> list[dict[str, Any]]:
    r = live.admin.get("/api/audit", params={"action": action})
    assert r.status_code == 200, r.text
    return list(reversed(r.json()))  # oldest first


def wait_for_send(live: Live, send_id: str, timeout: float = 60.0) -> tuple[dict[str, Any], list[int]]:
    """The finished send, and the `done` counts seen while polling."""
    seen: list[int] = []

    def finished() -> dict[str, Any] | None:
        r = live.staff.get(f"/api/orthanc/sends/{send_id}")
        assert r.status_code == 200, r.text
        send: dict[str, Any] = r.json()
        seen.append(send["done"])
        return send if send["state"] != "running" else None

    return wait_until(finished, timeout, "the send to finish"), seen


def test_only_admins_see_and_change_the_settings(live: Live) -> None:
    assert live.staff.get("/api/settings/orthanc").status_code == 403
    put = live.staff.put("/api/settings/orthanc", json={"url": "http://x:8042"}, headers=live.staff_csrf)
    assert put.status_code == 403
    assert live.staff.post("/api/settings/orthanc/test", json={}, headers=live.staff_csrf).status_code == 403
    no_csrf = live.admin.put("/api/settings/orthanc", json={"url": "http://x:8042", "user": "a"})
    assert no_csrf.status_code == 403
    bad = live.admin.put("/api/settings/orthanc", json={"url": "pacs", "user": "a"}, headers=live.admin_csrf)
    assert bad.status_code == 400 and "http://pacs-server:8042" in bad.json()["detail"]


def test_before_setup_sending_says_orthanc_is_not_set_up(live: Live) -> None:
    assert live.staff.get("/api/orthanc").json() == {"configured": False}
    r = live.staff.post("/api/orthanc/sends", json={"SeriesKey": live.key}, headers=live.staff_csrf)
    assert r.status_code == 400 and "not set up" in r.json()["detail"]


def test_password_is_saved_but_never_returned_and_test_connection_works(
    live: Live, orthanc: OrthancServer
) -> None:
    body = {"url": orthanc.url + "/", "user": orthanc.user, "password": orthanc.password}
    r = live.admin.put("/api/settings/orthanc", json=body, headers=live.admin_csrf)
    assert r.status_code == 200, r.text
    assert r.json() == {"url": orthanc.url, "user": orthanc.user, "password_set": True}
    assert orthanc.password not in r.text
    shown = live.admin.get("/api/settings/orthanc")
    assert shown.json()["password_set"] and orthanc.password not in shown.text
    # Saving the address again without a password keeps the saved one.
    body.pop("password")
    again = live.admin.put("/api/settings/orthanc", json=body, headers=live.admin_csrf)
    assert again.json()["password_set"]

    ok = live.admin.post("/api/settings/orthanc/test", json={}, headers=live.admin_csrf)
    assert ok.status_code == 200, ok.text
    assert ok.json()["ok"] and ok.json()["version"] == orthanc.get("/system")["Version"]
    wrong = live.admin.post(
        "/api/settings/orthanc/test", json={"password": "not-it"}, headers=live.admin_csrf
    )
    assert wrong.status_code == 502 and "refused the user name or password" in wrong.json()["detail"]
    closed = {"url": f"http://127.0.0.1:{closed_port()}"}
    down = live.admin.post("/api/settings/orthanc/test", json=closed, headers=live.admin_csrf)
    assert down.status_code == 503 and "cannot be reached" in down.json()["detail"]
    assert live.admin.get("/api/me").status_code == 200  # a refused Orthanc password does not sign out

    settings_log = audit(live, "orthanc_settings")
    assert [e["detail"]["password"] for e in settings_log[-2:]] == ["set", "unchanged"]
    assert all(orthanc.password not in str(e) for e in settings_log)
    outcomes = [e["detail"]["outcome"] for e in audit(live, "orthanc_test")[-3:]]
    assert outcomes == ["ok", "OrthancAuthFailed", "OrthancUnreachable"]


def test_staff_send_a_series_in_the_background_and_a_second_send_adds_nothing(
    live: Live, orthanc: OrthancServer
) -> None:
    orthanc.clear()
    body = {"url": orthanc.url, "user": orthanc.user, "password": orthanc.password}
    assert live.admin.put("/api/settings/orthanc", json=body, headers=live.admin_csrf).status_code == 200
    assert live.staff.get("/api/orthanc").json() == {"configured": True}

    r = live.staff.post("/api/orthanc/sends", json={"SeriesKey": live.key.upper()}, headers=live.staff_csrf)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["SeriesKey"] == live.key and started["started_by"] == "sipho"
    assert started["started_at"].endswith("+02:00")  # shown in Africa/Johannesburg time
    first, seen = wait_for_send(live, started["id"])
    assert first["state"] == "completed" and first["error"] is None
    counts = {k: first[k] for k in ("total", "done", "sent", "skipped", "failed")}
    assert counts == {"total": 8, "done": 8, "sent": 8, "skipped": 0, "failed": 0}
    assert seen == sorted(seen)  # progress only goes forward
    assert orthanc.instance_uids() == sop_uids(live.db, live.key)

    r = live.staff.post("/api/orthanc/sends", json={"SeriesKey": live.key}, headers=live.staff_csrf)
    second, _ = wait_for_send(live, r.json()["id"])
    assert (second["sent"], second["skipped"], second["failed"]) == (0, 8, 0)
    assert len(orthanc.get("/instances")) == 8

    entries = [e for e in audit(live, "orthanc_send") if e["detail"]["SeriesKey"] == live.key]
    states = [(e["detail"]["send"], e["detail"]["state"]) for e in entries]
    assert states == [
        (started["id"], "started"),
        (started["id"], "completed"),
        (second["id"], "started"),
        (second["id"], "completed"),
    ]
    assert entries[1]["detail"]["sent"] == 8 and entries[3]["detail"]["skipped"] == 8
    assert all(e["user"] == "sipho" for e in entries)


def test_unknown_series_and_unknown_send_are_404(live: Live) -> None:
    if not live.staff.get("/api/orthanc").json()["configured"]:  # when this test runs alone
        body = {"url": f"http://127.0.0.1:{closed_port()}", "user": "pacs"}
        assert live.admin.put("/api/settings/orthanc", json=body, headers=live.admin_csrf).status_code == 200
    r = live.staff.post("/api/orthanc/sends", json={"SeriesKey": "0" * 40}, headers=live.staff_csrf)
    assert r.status_code == 404 and "no series with that SeriesKey" in r.json()["detail"]
    assert live.staff.get(f"/api/orthanc/sends/{'0' * 16}").status_code == 404
    assert live.staff.get("/api/orthanc/sends/nope").status_code == 422
