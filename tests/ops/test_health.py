"""`GET /healthz` for the practice's monitoring: no session needed, no patient data in it; it says whether
the index and the NAS roots answer, when the last run was, and how full the data directory's disk is; a
nearly full disk turns it to 503 and shows a warning on the Indexing page (the setting decides when)."""

from __future__ import annotations

from pathlib import Path

from opskit import add_study, live_service

from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for


def test_healthz_answers_without_a_session_and_without_patient_data(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    add_study(archive, "MÜLLER^HANS", "PID-M", "1.2.826.7")
    run_index(tmp_path / "pacsindex.db", [source_for(str(archive))], ScanOptions(workers=1))
    with live_service(tmp_path, roots=(str(archive),), disk_warning_percent=0) as live, live.anon() as anon:
        r = anon.get("/healthz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"] and body["index"]["ok"]
        assert body["index"]["last_run"]["state"] == "completed"
        assert body["nas"] == {"roots": 1, "reachable": 1, "ok": True}
        assert body["disk"]["free_bytes"] > 0 and body["disk"]["warning"] is False
        for private in ("MÜLLER", "MULLER", "PID-M", str(archive)):
            assert private not in r.text
        assert live.staff.get("/api/index/schedule").json()["warnings"] == []


def test_a_nearly_full_disk_or_unreachable_nas_is_a_503_and_a_warning(tmp_path: Path) -> None:
    gone = tmp_path / "unmounted"
    with live_service(tmp_path, roots=(str(gone),), disk_warning_percent=100) as live, live.anon() as anon:
        r = anon.get("/healthz")
        assert r.status_code == 503
        body = r.json()
        assert (
            not body["ok"]
            and body["disk"]["warning"]
            and body["nas"] == {"roots": 1, "reachable": 0, "ok": False}
        )
        warnings = live.staff.get("/api/index/schedule").json()["warnings"]
        assert any("nearly full" in w for w in warnings)
