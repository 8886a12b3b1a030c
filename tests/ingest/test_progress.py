"""Progress snapshots, rate/ETA and the atomically written status file."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from pacsindex.ingest.progress import STATUS_KEYS, Progress, RateMeter, StatusFile


def test_status_file_has_the_seed_keys_and_local_time(tmp_path: Path) -> None:
    t = datetime(2026, 1, 2, 10, 0, 0, tzinfo=timezone.utc)
    p = Progress(
        run_id=1,
        roots=("/nas",),
        state="running",
        enumerated_files=100,
        enumeration_done=True,
        files_processed=25,
        started_at=t,
        last_updated=t,
    )
    f = tmp_path / "index_status.json"
    StatusFile(f, ZoneInfo("Africa/Johannesburg")).write(p)
    data = json.loads(f.read_text(encoding="utf-8"))
    assert set(STATUS_KEYS) <= set(data)
    assert data["running"] is True and data["percent"] == 25.0
    assert data["started_at"] == "2026-01-02T12:00:00+02:00"
    assert [x.name for x in tmp_path.iterdir()] == ["index_status.json"], "no temporary files left behind"


def test_percent_unknown_until_enumeration_is_done() -> None:
    p = Progress(run_id=1, roots=(), state="running", enumerated_files=10, files_processed=5)
    assert p.percent is None
    assert Progress(run_id=1, roots=(), state="completed", enumeration_done=True).percent == 100.0


def test_rate_meter_follows_recent_speed() -> None:
    m = RateMeter(window_s=10)
    assert m.add(0, now=0.0) == 0.0
    assert m.add(100, now=1.0) == 100.0
    for s in range(2, 30):
        rate = m.add(100 + (s - 1) * 10, now=float(s))
    assert 9 <= rate <= 11
