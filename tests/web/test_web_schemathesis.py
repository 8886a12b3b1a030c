"""The OpenAPI description, fuzzed by schemathesis against the live server over a real socket: whatever
a signed-in client sends, no answer is a server error (5xx)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree
from support_web import PASSWORD, serve

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A fresh server per run: the admin run creates, disables and re-keys accounts as it goes."""
    base = tmp_path
    write_sample(base / "archive", patients=6, files=120)
    settings = Settings(db=base / "pacsindex.db", roots=(str(base / "archive"),), workers=1)
    run_index(settings.db, [LocalTree(str(base / "archive"))], ScanOptions(workers=1))  # real data to find
    with serve(base, settings=settings, users={"admin": True, "staff": False}) as srv:
        yield srv.url


def sign_in(url: str, name: str) -> list[str]:
    with httpx.Client(base_url=url) as client:
        r = client.post("/auth/signin", json={"name": name, "password": PASSWORD})
        r.raise_for_status()
        return [
            "-H",
            f"Cookie: pacsindex_session={client.cookies['pacsindex_session']}",
            "-H",
            f"X-CSRF-Token: {r.json()['csrf_token']}",
        ]


def fuzz(url: str, workdir: Path, headers: list[str], *filters: str) -> subprocess.CompletedProcess[str]:
    """schemathesis' CLI with bounded examples, so a run takes seconds; it keeps its files in `workdir`."""
    cmd = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "12",
        "--seed",
        "1",
        "--workers",
        "1",  # hypothesis parses lambdas with `ast`, which CPython 3.11 cannot do from two threads at once
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "20",
        "--no-color",
        *headers,
        *filters,
        "--exclude-path",
        "/api/index/events",  # a server-sent event stream: it takes nothing and answers for minutes
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=workdir)


def test_no_server_errors_for_an_admin(server: str, tmp_path: Path) -> None:
    # Not fuzzed here: signing out (it would end the session the run uses), starting indexing (an
    # admin may index any folder, and the fuzzer would pick real ones; the staff run covers it), and the
    # NAS and Orthanc connection tests (they would connect to whatever host the fuzzer invents).
    proc = fuzz(
        server,
        tmp_path,
        sign_in(server, "admin"),
        "--exclude-path",
        "/auth/signout",
        "--exclude-path",
        "/api/index/start",
        "--exclude-path",
        "/api/settings/nas/test",
        "--exclude-path",
        "/api/settings/orthanc/test",
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def test_no_server_errors_for_staff_on_the_index_routes(server: str, tmp_path: Path) -> None:
    proc = fuzz(
        server, tmp_path, sign_in(server, "staff"), "--include-path-regex", "^/api/(index|search|series)"
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
