"""`pacsindex share create|list|revoke` as a user runs them: a whole study by default, a made-up passcode
printed once, the message, times in the practice's zone; the link works; revoke ends it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run_cli, write_dicom
from pacsindex.config.settings import Settings
from pacsindex.index import store
from pacsindex.share.links import Shares, share_series_keys

STUDY = "1.2.826.0.1.3680043.77.4242"


def test_share_create_list_revoke(tmp_path: Path) -> None:
    for s in (1, 2, 3):
        write_dicom(
            tmp_path / "archive" / f"S{s}" / "IM0.dcm",
            StudyInstanceUID=STUDY,
            SeriesInstanceUID=f"{STUDY}.{s}",
            SeriesNumber=s,
            Modality="US" if s == 3 else "CT",
        )
    db = tmp_path / "pacsindex.db"
    run_cli("index", str(tmp_path / "archive"), "--db", str(db), "--workers", "1")
    with store.reading(db) as conn:
        key = conn.execute("SELECT SeriesKey FROM series WHERE SeriesNumber = 2").fetchone()[0]
    env = {"PACSINDEX_PUBLIC_URL": "https://pacs.example.co.za", "PACSINDEX_TIMEZONE": "Africa/Johannesburg"}
    out = run_cli(
        "share", "create", key, "--db", str(db), "--generate-passcode", "--note", "Dr Naidoo", env=env
    ).stdout
    assert "3 series" in out and "SAST" in out and "Dr Naidoo" in out
    url = re.search(r"https://pacs\.example\.co\.za/share/\S+", out)
    passcode = re.search(r"Passcode \(send it another way than the link\): (\S+)", out)
    assert url and passcode
    shares = Shares.from_settings(Settings(db=db))
    made = shares.recent()[0]
    assert len(share_series_keys(made)) == 3 and made.has_passcode and made.note == "Dr Naidoo"
    refused = run_cli("share", "create", key, "--db", str(db), "--deidentify", env=env, check=False)
    assert refused.returncode != 0 and "burned" in refused.stderr and "Traceback" not in refused.stderr
    one = json.loads(
        run_cli("share", "create", key, "--only-this-series", "--db", str(db), "--json", env=env).stdout
    )
    assert one["series"] == 1 and one["passcode"] is None and one["expires_at"].endswith("SAST")
    listing = run_cli("share", "list", "--db", str(db), env=env).stdout
    assert "Dr Naidoo" in listing and "SAST" in listing and "active" in listing
    run_cli("share", "revoke", str(made.id), "--db", str(db), env=env)
    rows = json.loads(run_cli("share", "list", "--db", str(db), "--json", env=env).stdout)
    assert {r["id"]: r["status"] for r in rows}[made.id] == "revoked"
    gone = run_cli("share", "revoke", "999", "--db", str(db), env=env, check=False)
    assert gone.returncode != 0 and "no share link" in gone.stderr
