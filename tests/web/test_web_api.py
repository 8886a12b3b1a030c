"""The JSON API over a real socket (uvicorn in a thread, httpx as the client): indexing in the background
with live status, searches that see partial results, the same matching as the CLI, series detail, problem
files, and clear 4xx answers to bad input."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions
from pacsindex.sample.archive import write_sample
from support_jobs import GatedTree
from support_wait import wait_until
from support_web import LiveServer


@dataclass
class Live:
    url: str
    client: httpx.Client
    csrf: dict[str, str]
    gate: threading.Event
    sources: list[GatedTree]
    archive: Path

    def status(self) -> dict[str, Any]:
        r = self.client.get("/api/index/status")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_for(self, check: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status()
            return status if check(status) else None

        return wait_until(reached, timeout, "the status")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web-api") / "archive"
    write_sample(root, patients=10, files=400)
    return root


def serve_archive(live_server: Callable[..., LiveServer], archive: Path, db: Path) -> Live:
    """A server with an empty index at `db` whose runs walk `archive` through a gate the test holds."""
    gate = threading.Event()
    gate.set()
    sources: list[GatedTree] = []

    def source_for(root: str) -> GatedTree:
        sources.append(GatedTree(root, gate, before_gate=6))
        return sources[-1]

    server = live_server(
        settings=Settings(db=db, roots=(str(archive),), workers=1),
        users={"radiologist": False},
        scan_options=ScanOptions(workers=1, commit_seconds=0.0, progress_seconds=0.0),
        source_for=source_for,
    )
    client, csrf = server.sign_in("radiologist")
    return Live(server.url, client, csrf, gate, sources, archive)


@pytest.fixture
def fresh(live_server: Callable[..., LiveServer], archive: Path, tmp_path: Path) -> Live:
    """A server of its own, with nothing indexed yet."""
    return serve_archive(live_server, archive, tmp_path / "pacsindex.db")


@pytest.fixture(scope="module")
def live(
    live_server: Callable[..., LiveServer], archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Live:
    """The server the search tests share, with the archive indexed through the API."""
    shared = serve_archive(live_server, archive, tmp_path_factory.mktemp("web-api-db") / "pacsindex.db")
    assert shared.client.post("/api/index/start", headers=shared.csrf).status_code == 202
    assert shared.wait_for(lambda s: not s["running"])["state"] == "completed"
    return shared


def test_before_any_indexing_searches_say_how_to_index(fresh: Live) -> None:
    live = fresh
    for path in ("/api/search", f"/api/series/{'0' * 40}", "/api/index/errors"):
        r = live.client.get(path, params={"q": "müller"} if path == "/api/search" else None)
        assert r.status_code == 404, path
        # in the page's words: where to go, not a command line
        assert r.json()["detail"] == "there is no index yet: start indexing on the Indexing page"
    status = live.status()
    assert status["state"] == "idle" and not status["running"] and status["timezone"] == "Africa/Johannesburg"


def test_indexing_runs_in_the_background_and_searches_see_it_grow(fresh: Live) -> None:
    live = fresh
    live.gate.clear()  # hold the run after a few folders
    r = live.client.post("/api/index/start", headers=live.csrf)
    assert r.status_code == 202 and r.json()["running"] and r.json()["started_by"] == "radiologist"
    again = live.client.post("/api/index/start", headers=live.csrf)
    assert again.status_code == 409 and "already" in again.json()["detail"]

    held = live.wait_for(lambda s: s["series_count"] > 0 and live.sources[-1].at_gate.is_set())
    assert held["running"] and held["percent"] is None  # still counting files: no total yet
    assert held["roots"] == [str(live.archive)] and held["started_at"].endswith("+02:00")
    partial = live.client.get("/api/search", params={"limit": 1000})
    assert partial.status_code == 200 and 0 < len(partial.json())
    # The first index surveys: one file of each new folder first, so each series found so far says it is
    # still being indexed (tests/ingest/test_survey.py), in search, on its page, its study and the worklist.
    assert {type(r["filling"]) for r in partial.json()} == {bool}
    filling = [r for r in partial.json() if r["filling"]]
    assert filling and all(r["file_count"] == 1 for r in filling)
    key = filling[0]["SeriesKey"]
    assert live.client.get(f"/api/series/{key}").json()["filling"] is True
    studies = live.client.get("/api/studies", params={"limit": 200}).json()["items"]
    assert any(st["filling"] for st in studies)
    study = next(st for st in studies if st["filling"])
    detail = live.client.get(f"/api/studies/{study['StudyKey']}").json()
    assert detail["filling"] is True and any(x["filling"] for x in detail["series"])

    live.gate.set()
    done = live.wait_for(lambda s: not s["running"])
    assert done["state"] == "completed" and done["percent"] == 100.0 and done["eta_s"] == 0.0
    assert done["files_processed"] == done["enumerated_files"] == 404 and done["files_read"] == 404
    assert done["non_dicom"] == 4 and done["errors"] == 0
    assert done["last_updated"].endswith("+02:00")  # shown in Africa/Johannesburg time
    everything = live.client.get("/api/search", params={"limit": 1000}).json()
    assert len(everything) == done["series_count"] > len(partial.json())
    assert not any(r["filling"] for r in everything)
    assert live.client.get(f"/api/series/{key}").json()["filling"] is False
    after = live.client.get("/api/studies", params={"limit": 200}).json()["items"]
    assert not any(st["filling"] for st in after)


def test_search_matches_like_the_cli(live: Live) -> None:
    def search(**params: str) -> list[dict]:
        r = live.client.get("/api/search", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    muller = search(q="müller")
    assert muller and {r["PatientName"] for r in muller} == {"MÜLLER^HANS"}
    assert {r["SeriesKey"] for r in search(q="MULLER")} == {
        r["SeriesKey"] for r in muller
    }  # accents optional
    assert {r["SeriesKey"] for r in search(q="hans müller")} == {r["SeriesKey"] for r in muller}
    first = muller[0]
    for key in (
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyDescription",
        "AccessionNumber",
        "SeriesDescription",
        "Modality",
        "SeriesNumber",
        "file_count",
    ):
        assert first[key] not in (None, ""), key
    assert {r["PatientName"] for r in search(q="иванов")} == {"Иванов^Иван"}
    assert {r["PatientName"] for r in search(q="παπαδόπουλος")} == {"Παπαδόπουλος^Νίκος"}
    assert search(q="nobody-has-this-name") == []
    mr = search(modality="mr", limit="1000")
    assert mr and {r["Modality"] for r in mr} == {"MR"}
    dated = search(date_from="2020-01-01", date_to="2021-12-31", limit="1000")
    assert all("20200101" <= r["StudyDate"] <= "20211231" for r in dated)
    page1, page2 = search(limit="3"), search(limit="3", offset="3")
    assert len(page1) == 3 and not {r["SeriesKey"] for r in page1} & {r["SeriesKey"] for r in page2}


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2024-13-01"},
        {"date_from": "yesterday"},
        {"date_from": "2024-02-01", "date_to": "2024-01-01"},
        {"limit": "0"},
        {"limit": "1000000"},
        {"limit": "ten"},
        {"offset": "-1"},
        {"offset": "99999999999999999999999"},
        {"modality": "C T"},
        {"modality": "'; DROP TABLE series; --"},
        {"q": "x" * 201},
        {"q": " ".join(["w"] * 17)},
    ],
)
def test_bad_search_input_gets_a_clear_4xx(live: Live, params: dict[str, str]) -> None:
    r = live.client.get("/api/search", params=params)
    assert 400 <= r.status_code < 500, (params, r.status_code, r.text)
    assert isinstance(r.json()["detail"], str) and len(r.json()["detail"]) > 10


@pytest.mark.parametrize("q", ["\x00", "%", "_", "'\"", "\\", "ü\u0308", "\U0001f600", "\ufeff", "^=^"])
def test_odd_characters_in_a_search_are_just_text(live: Live, q: str) -> None:
    r = live.client.get("/api/search", params={"q": q})
    assert r.status_code == 200 and isinstance(r.json(), list)


def test_a_series_in_full_with_its_files(live: Live) -> None:
    key = live.client.get("/api/search", params={"q": "müller"}).json()[0]["SeriesKey"]
    r = live.client.get(f"/api/series/{key}")
    assert r.status_code == 200
    s = r.json()
    assert s["SeriesKey"] == key and s["PatientName"] == "MÜLLER^HANS" and "series_id" not in s
    for field in ("StudyInstanceUID", "SeriesInstanceUID", "InstitutionName", "Manufacturer", "total_size"):
        assert s[field], field
    assert len(s["files"]) == s["file_count"] > 0
    numbers = [f["InstanceNumber"] for f in s["files"]]
    assert numbers == sorted(numbers)
    assert all(Path(f["path"]).is_file() and f["SOPInstanceUID"] for f in s["files"])
    assert live.client.get(f"/api/series/{key.upper()}").status_code == 200
    missing = live.client.get(f"/api/series/{'f' * 40}")
    assert missing.status_code == 404 and "no series" in missing.json()["detail"]
    for bad in ("not-a-key", "g" * 40, "a" * 41, "..%2F..%2Fetc%2Fpasswd"):
        assert live.client.get(f"/api/series/{bad}").status_code in (404, 422), bad


def test_problem_files_are_paged(live: Live) -> None:
    r = live.client.get("/api/index/errors", params={"kind": "non_dicom", "limit": 3})
    page = r.json()
    assert r.status_code == 200 and len(page["items"]) == 3 and page["has_more"]
    rest = live.client.get("/api/index/errors", params={"kind": "non_dicom", "limit": 3, "offset": 3}).json()
    assert len(rest["items"]) == 1 and not rest["has_more"]
    assert all(item["reason"] for item in page["items"] + rest["items"])
    assert live.client.get("/api/index/errors").json()["items"] == []  # nothing unreadable
    assert live.client.get("/api/index/errors", params={"kind": "all"}).status_code == 422


def test_stop_ends_a_run_which_the_next_run_resumes(live: Live) -> None:
    live.gate.clear()
    assert live.client.post("/api/index/start", headers=live.csrf).status_code == 202
    live.wait_for(lambda s: live.sources[-1].at_gate.is_set())
    r = live.client.post("/api/index/stop", headers=live.csrf)
    assert r.status_code == 200
    stopped = live.wait_for(lambda s: not s["running"])
    assert stopped["state"] == "cancelled" and "resumes" in stopped["message"]
    assert live.client.post("/api/index/stop", headers=live.csrf).status_code == 409
    live.gate.set()
    assert live.client.post("/api/index/start", json={}, headers=live.csrf).status_code == 202
    done = live.wait_for(lambda s: not s["running"])
    assert done["state"] == "completed" and done["files_read"] == 0 and done["files_unchanged"] == 404
