"""Staff sign-in through the web service (the framework's test client): every /api route needs a session,
the cookie's flags, CSRF, the idle timeout on an injected clock, throttling with Retry-After, roles, the
audit log, local API docs, security headers, and no patient data in the INFO log."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
ORIGIN = "http://testserver"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of a small sample archive, copied for each test that changes accounts."""
    base = tmp_path_factory.mktemp("web-auth")
    write_sample(base / "archive", patients=6, files=120)
    run_index(base / "index.db", [LocalTree(str(base / "archive"))], ScanOptions(workers=1))
    return base


@pytest.fixture
def clock() -> Clock:
    return Clock()


def build(indexed: Path, tmp_path: Path, clock: Clock, **overrides: Any) -> FastAPI:
    db = tmp_path / "index.db"
    db.write_bytes((indexed / "index.db").read_bytes())
    settings = Settings(
        db=db,
        roots=(str(indexed / "archive"),),
        workers=1,
        session_idle_minutes=30,
        signin_failures_per_user=3,
        signin_failures_per_address=6,
        signin_lockout_minutes=10,
    ).with_overrides(**overrides)
    app = create_app(
        settings, clock=clock, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    app.state.pacsindex.accounts.add_user("alice", PASSWORD, admin=True)
    app.state.pacsindex.accounts.add_user("bob", PASSWORD)
    return app


@pytest.fixture
def app(indexed: Path, tmp_path: Path, clock: Clock) -> FastAPI:
    return build(indexed, tmp_path, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=ORIGIN) as c:
        yield c


def sign_in(client: TestClient, name: str = "alice", password: str = PASSWORD) -> dict[str, str]:
    """Sign in; returns the headers a page sends with changes (the CSRF token)."""
    r = client.post("/auth/signin", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every /api operation the OpenAPI description lists."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/"):
            concrete = path.replace("{key}", "a" * 40).replace("{name}", "bob")
            out += [(method.upper(), concrete) for method in operations]
    return out


def test_every_api_route_needs_a_signed_in_user(app: FastAPI, client: TestClient) -> None:
    routes = api_routes(app)
    assert len(routes) >= 12
    for method, path in routes:
        r = client.request(method, path, json={} if method != "GET" else None)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json()["detail"] == "sign in first"
    client.cookies.set("pacsindex_session", "forged-token")
    assert client.get("/api/me").status_code == 401


def test_sign_in_sets_a_strict_http_only_session_cookie(client: TestClient) -> None:
    r = client.post("/auth/signin", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 200
    me = r.json()
    assert me["name"] == "alice" and me["is_admin"] and me["timezone"] == "Africa/Johannesburg"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("pacsindex_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert client.get("/api/me").json()["csrf_token"] == me["csrf_token"]


def test_the_cookie_is_secure_when_the_settings_say_https(
    indexed: Path, tmp_path: Path, clock: Clock
) -> None:
    app = build(indexed, tmp_path, clock, secure_cookies=True)
    with TestClient(app, base_url="https://testserver") as client:
        r = client.post("/auth/signin", json={"name": "bob", "password": PASSWORD})
        assert "Secure" in r.headers["set-cookie"]
        assert r.headers["strict-transport-security"].startswith("max-age=")


def test_a_wrong_password_is_refused_and_audited(client: TestClient) -> None:
    r = client.post("/auth/signin", json={"name": "alice", "password": "not it at all"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong user name or password"
    assert "set-cookie" not in r.headers
    sign_in(client)
    failed = client.get("/api/audit", params={"action": "signin_failed"}).json()
    assert [(e["user"], e["client"]) for e in failed] == [("alice", "testclient")]


def test_changes_need_the_sessions_csrf_token(client: TestClient) -> None:
    csrf = sign_in(client)
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": csrf["X-CSRF-Token"][:-1]}):
        r = client.post("/api/index/stop", headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.patch("/api/users/bob", json={"disabled": True})
    assert r.status_code == 403
    assert not client.get("/api/users").json()[1]["disabled"]
    # the token is right, but the page asking is on another site
    r = client.post("/api/index/stop", headers={**csrf, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = client.post("/api/index/stop", headers={**csrf, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = client.post("/api/index/stop", headers={**csrf, "Origin": ORIGIN})
    assert r.status_code == 409  # accepted: there is just no run to stop


def test_signing_in_from_another_site_is_refused(client: TestClient) -> None:
    r = client.post(
        "/auth/signin",
        json={"name": "alice", "password": PASSWORD},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403
    r = client.post("/auth/signin", data={"name": "alice", "password": PASSWORD})  # a plain HTML form
    assert r.status_code == 422


def test_sign_out_needs_the_token_and_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client)
    assert client.post("/auth/signout").status_code == 403  # without the token: refused
    assert client.get("/api/me").status_code == 200
    r = client.post("/auth/signout", headers=csrf)
    assert r.status_code == 204 and 'pacsindex_session=""' in r.headers["set-cookie"]
    assert client.get("/api/me").status_code == 401


def test_idle_sessions_end_and_status_polls_do_not_keep_them_alive(client: TestClient, clock: Clock) -> None:
    sign_in(client, "bob")
    clock.now += 25 * 60
    assert client.get("/api/search", params={"q": "müller"}).status_code == 200  # activity
    for _ in range(6):
        clock.now += 5 * 60
        client.get("/api/index/status")  # watching the progress bar
        client.get("/api/me", headers={"X-Background": "1"})  # the page's background refresh
    clock.now += 1
    r = client.get("/api/search", params={"q": "müller"})
    assert r.status_code == 401 and "30 minutes without activity" in r.json()["detail"]


def test_repeated_failures_lock_the_name_with_retry_after(client: TestClient, clock: Clock) -> None:
    for _ in range(3):
        assert client.post("/auth/signin", json={"name": "bob", "password": "guess guess"}).status_code == 401
    r = client.post("/auth/signin", json={"name": "bob", "password": PASSWORD})
    assert r.status_code == 429 and "too many failed sign-ins" in r.json()["detail"]
    assert 1 <= int(r.headers["Retry-After"]) <= 600
    clock.now += int(r.headers["Retry-After"])
    sign_in(client, "bob")


def test_failures_from_one_computer_lock_it_for_every_name(client: TestClient) -> None:
    for name in ("carol", "dave", "erin", "frank", "grace", "heidi"):
        assert client.post("/auth/signin", json={"name": name, "password": "guess guess"}).status_code == 401
    r = client.post("/auth/signin", json={"name": "alice", "password": PASSWORD})
    assert r.status_code == 429 and "this computer" in r.json()["detail"]


def test_staff_may_not_use_admin_routes_or_index_other_folders(client: TestClient, tmp_path: Path) -> None:
    csrf = sign_in(client, "bob")
    assert client.get("/api/me").json()["is_admin"] is False
    for method, path in (("GET", "/api/users"), ("GET", "/api/audit"), ("GET", "/api/settings")):
        r = client.request(method, path)
        assert r.status_code == 403 and r.json()["detail"] == "only an admin may do this"
    assert client.post("/api/users", json={"name": "eve"}, headers=csrf).status_code == 403
    assert client.patch("/api/users/bob", json={"admin": True}, headers=csrf).status_code == 403
    r = client.post("/api/index/start", json={"roots": [str(tmp_path)]}, headers=csrf)
    assert r.status_code == 403 and "only an admin" in r.json()["detail"]


def test_an_admin_creates_an_account_whose_password_is_shown_once(app: FastAPI, client: TestClient) -> None:
    csrf = sign_in(client)
    r = client.post("/api/users", json={"name": "thandi.nkosi"}, headers=csrf)
    assert r.status_code == 201
    password = r.json()["password"]
    assert len(password) >= 16 and not r.json()["is_admin"]
    assert all(u.get("password") is None for u in client.get("/api/users").json())
    assert client.post("/api/users", json={"name": "THANDI.NKOSI"}, headers=csrf).status_code == 409
    assert client.post("/api/users", json={"name": "no spaces please"}, headers=csrf).status_code == 422
    with TestClient(app, base_url=ORIGIN) as other:
        sign_in(other, "thandi.nkosi", password)
        assert other.get("/api/me").json()["name"] == "thandi.nkosi"
        r = client.patch("/api/users/thandi.nkosi", json={"disabled": True}, headers=csrf)
        assert r.status_code == 200 and r.json()["disabled"]
        assert other.get("/api/me").status_code == 401  # disabling ends their session at once
    r = client.patch("/api/users/alice", json={"admin": False}, headers=csrf)
    assert r.status_code == 409 and "last enabled admin" in r.json()["detail"]
    assert client.patch("/api/users/nobody", json={"admin": True}, headers=csrf).status_code == 404
    r = client.patch("/api/users/bob", json={"generate_password": True}, headers=csrf)
    assert r.status_code == 200 and len(r.json()["password"]) >= 16


def test_changing_your_own_password_needs_the_current_one(client: TestClient) -> None:
    csrf = sign_in(client, "bob")
    body = {"current_password": "wrong wrong", "new_password": "my own new secret"}
    r = client.post("/api/me/password", json=body, headers=csrf)
    assert r.status_code == 403
    body["current_password"] = PASSWORD
    assert client.post("/api/me/password", json=body, headers=csrf).status_code == 204
    assert client.get("/api/me").status_code == 401  # signed out everywhere, this page too
    sign_in(client, "bob", "my own new secret")


def test_the_audit_log_says_who_searched_for_what_and_opened_which_series(client: TestClient) -> None:
    staff = sign_in(client, "bob")
    found = client.get("/api/search", params={"q": "müller", "modality": "MR"}).json()
    client.get(f"/api/series/{found[0]['SeriesKey']}")
    client.post("/auth/signout", headers=staff)
    sign_in(client, "alice")
    entries = client.get("/api/audit", params={"user": "bob"}).json()
    assert [e["action"] for e in entries] == ["signout", "open_series", "search", "signin"]
    # what was asked, and which series it found (by id: a patient's access report needs it)
    keys = [r["SeriesKey"] for r in found]
    assert entries[2]["detail"] == {"q": "müller", "modality": "MR", "series": keys}
    assert entries[1]["detail"]["PatientName"] == "MÜLLER^HANS"
    assert entries[1]["detail"]["SeriesKey"] == found[0]["SeriesKey"]
    assert client.get("/api/audit", params={"action": "nonsense"}).status_code == 400


def test_starting_and_stopping_indexing_is_audited(app: FastAPI, client: TestClient) -> None:
    csrf = sign_in(client, "bob")
    assert client.post("/api/index/start", headers=csrf).status_code == 202
    client.post("/api/index/stop", headers=csrf)  # 200, or 409 if the small run was already done
    assert app.state.pacsindex.jobs.wait(60)
    sign_in(client, "alice")
    actions = [e["action"] for e in client.get("/api/audit", params={"user": "bob"}).json()]
    assert "index_start" in actions


def test_no_patient_data_or_tokens_in_the_info_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        csrf = sign_in(client, "bob")
        client.post("/auth/signin", json={"name": "bob", "password": "wrong password"})
        found = client.get("/api/search", params={"q": "müller"}).json()
        client.get(f"/api/series/{found[0]['SeriesKey']}")
        client.get("/api/search", params={"date_from": "Müller"})
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "/api/search" in text  # the requests are logged ...
    for secret in ("müller", "MÜLLER", "PID-MUELLER", csrf["X-CSRF-Token"], PASSWORD, "wrong password"):
        assert secret.lower() not in text.lower()  # ... without what was searched for or any secret
    assert client.cookies["pacsindex_session"] not in text


def test_security_headers_and_no_caching_of_patient_data(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    sign_in(client)
    assert client.get("/api/search", params={"q": "müller"}).headers["cache-control"] == "no-store"
    assert not re.search(r"https?://", page.text)  # nothing from another server


def test_api_docs_are_served_from_this_server(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    for url in re.findall(r"(?:src|href)='([^']+)'", docs.text):
        assert url.startswith("/"), url  # no CDN
        assert client.get(url).status_code == 200, url
    spec = client.get("/openapi.json").json()
    assert {"/api/search", "/api/series/{key}", "/api/index/status", "/auth/signin"} <= set(spec["paths"])
