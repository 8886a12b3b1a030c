"""The worklist API over a real socket: one row per study with what reception reads (age, modalities,
series and image counts), sorting and pages, the count the page watches while indexing, one study with its
series, progress as server-sent events, the folders Start indexes, and audit entries with their subject."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from pacsindex.config.settings import Settings
from pacsindex.index.studies import age_at
from pacsindex.ingest.scan import ScanOptions
from pacsindex.sample.archive import write_sample
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer
from support_wait import wait_until

PASSWORD = "correct horse battery"


@dataclass
class Live:
    client: httpx.Client
    csrf: dict[str, str]
    settings: Settings


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("worklist-api")
    archive = base / "archive"
    write_sample(archive, patients=8, files=300)
    settings = Settings(db=base / "pacsindex.db", roots=(str(archive),), workers=1, data_dir=base)
    app = create_app(
        settings,
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        scan_options=ScanOptions(workers=1),
    )
    app.state.pacsindex.accounts.add_user("thandi", PASSWORD, admin=True)
    with ThreadedServer(app, settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/auth/signin", json={"name": "thandi", "password": PASSWORD})
        csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        assert client.post("/api/index/start", headers=csrf).status_code == 202
        wait_until(lambda: client.get("/api/index/status").json()["state"] == "completed")
        yield Live(client, csrf, settings)


def test_one_row_per_study_with_what_reception_reads(live: Live) -> None:
    series = live.client.get("/api/search", params={"limit": 1000}).json()
    page = live.client.get("/api/studies", params={"limit": 200}).json()
    studies = {s["StudyInstanceUID"] for s in series}
    assert page["total"] == len(page["items"]) == len(studies)
    for row in page["items"]:
        mine = [s for s in series if s["StudyInstanceUID"] == row["StudyInstanceUID"]]
        assert row["series_count"] == len(mine)
        assert row["image_count"] == sum(s["file_count"] for s in mine)
        assert row["modalities"] == sorted({s["Modality"] for s in mine})
    dates = [r["StudyDate"] for r in page["items"]]
    assert dates == sorted(dates, reverse=True), "newest study first"
    muller = [r for r in page["items"] if r["PatientName"] == "MÜLLER^HANS"]
    assert muller and all(r["age"] and r["age"].endswith(" y") for r in muller)


def test_sorted_by_name_and_paged(live: Live) -> None:
    everything = live.client.get("/api/studies", params={"sort": "name", "limit": 200}).json()["items"]
    names = [r["PatientName"].casefold() for r in everything]
    assert names == sorted(names)
    first = live.client.get("/api/studies", params={"sort": "name", "limit": 3}).json()
    second = live.client.get("/api/studies", params={"sort": "name", "limit": 3, "offset": 3}).json()
    assert [r["StudyKey"] for r in first["items"] + second["items"]] == [
        r["StudyKey"] for r in everything[:6]
    ]
    assert first["total"] == len(everything)
    assert live.client.get("/api/studies", params={"sort": "sideways"}).status_code == 422


def test_count_matches_the_search_and_narrows(live: Live) -> None:
    listed = live.client.get("/api/studies", params={"q": "müller"}).json()
    assert listed["total"] >= 1 and all(r["PatientName"] == "MÜLLER^HANS" for r in listed["items"])
    assert live.client.get("/api/studies/count", params={"q": "müller"}).json() == {"total": listed["total"]}


def test_dates_the_wrong_way_round_are_said_in_words(live: Live) -> None:
    r = live.client.get("/api/studies", params={"date_from": "2024-05-01", "date_to": "2024-04-01"})
    assert r.status_code == 400
    assert r.json()["detail"] == (
        "the study date from (2024-05-01) is after the study date to (2024-04-01): swap them, or clear one"
    )


def test_one_study_with_its_series_is_audited_with_the_patient_named(live: Live) -> None:
    row = live.client.get("/api/studies", params={"q": "müller"}).json()["items"][0]
    study = live.client.get(f"/api/studies/{row['StudyKey']}").json()
    assert len(study["series"]) == row["series_count"]
    numbers = [s["SeriesNumber"] for s in study["series"]]
    assert numbers == sorted(numbers)
    assert live.client.get("/api/studies/1.2.3.999999").status_code == 404
    assert live.client.get("/api/studies/not-a-key").status_code == 404
    assert live.client.get("/api/studies/" + "1" * 131).status_code == 422
    live.client.get(f"/api/series/{study['series'][0]['SeriesKey']}")
    audit = wait_until(lambda: live.client.get("/api/audit", params={"action": "open_study"}).json())
    assert audit[0]["detail"]["PatientName"] == "MÜLLER^HANS"
    opened = live.client.get("/api/audit", params={"action": "open_series"}).json()[0]
    assert opened["about"]["series"]["PatientName"] == "MÜLLER^HANS"
    assert opened["about"]["series"]["StudyDescription"] == study["StudyDescription"]


def test_progress_comes_as_server_sent_events(live: Live) -> None:
    with live.client.stream("GET", "/api/index/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        event = data = None
        for line in lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                break
    assert event == "status" and data is not None and data["state"] == "completed"


def test_folders_are_the_ones_start_indexes_including_a_nas_saved_a_moment_ago(live: Live) -> None:
    from pacsindex.sources.smb import nas

    before = live.client.get("/api/index/folders").json()["folders"]
    assert before == [str(r) for r in live.settings.roots]
    nas.save(
        live.settings.data_path, nas.validate({"host": "nas", "share": "Image Archiving", "user": "reader"})
    )
    try:
        after = live.client.get("/api/index/folders").json()["folders"]
        assert after[:-1] == before and after[-1].startswith("smb://nas")
    finally:
        nas.forget(live.settings.data_path)
    runs = live.client.get("/api/index/runs").json()
    assert runs[0]["status"] == "completed" and runs[0]["roots"] == before


def test_age_as_people_say_it() -> None:
    assert age_at("19620314", "20240313") == "61 y"
    assert age_at("19620314", "20240314") == "62 y"
    assert age_at("20230101", "20240315") == "14 mo"
    assert age_at("20240301", "20240315") == "14 d"
    assert age_at("", "20240315") is None and age_at("20240401", "20240315") is None
    assert age_at("20240230", "20240315") is None


def test_the_event_stream_ends_cleanly_when_the_server_stops(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "pacsindex.db", workers=1)
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.state.pacsindex.accounts.add_user("thandi", PASSWORD)
    outcome: list[object] = []
    first = threading.Event()
    server = ThreadedServer(app, settings).__enter__()
    client = httpx.Client(base_url=server.url, timeout=60)
    client.post("/auth/signin", json={"name": "thandi", "password": PASSWORD})

    def follow() -> None:
        try:
            with client.stream("GET", "/api/index/events") as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        first.set()
            outcome.append("ended")
        except httpx.HTTPError as exc:  # cut off, not ended
            outcome.append(exc)

    reader = threading.Thread(target=follow)
    reader.start()
    assert first.wait(30)
    server.__exit__(None, None, None)
    reader.join(60)
    client.close()
    assert outcome == ["ended"]
