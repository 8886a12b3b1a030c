"""The data directory's disk fills during a run (issue 14, point 5a): on a small tmpfs the run stops with
one clear line and exit code 4, the index passes SQLite's integrity check and opens, and once there is
room the next run resumes: files committed before the disk filled are not read again."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_cli
from pacsindex.errors import StoreError
from pacsindex.sample.archive import write_sample


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 700 KiB tmpfs (root only: skipped elsewhere), unmounted afterwards."""
    mount = tmp_path / "data"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_run_cleanly_and_the_next_run_resumes(small_disk: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    write_sample(archive, patients=12, files=1500, seed=5)
    db = small_disk / "index.db"

    full = run_cli("index", str(archive), "--db", str(db), check=False)
    assert full.returncode == StoreError.exit_code == 4
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "disk is full" in lines[0] and "Traceback" not in full.stderr

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        status, message = conn.execute("SELECT status, message FROM runs ORDER BY id DESC").fetchone()
        committed = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    finally:
        conn.close()
    # Recorded as failed, or (when not even that fitted) left running: the next run marks it interrupted.
    assert (status, "disk is full" in (message or "")) in (("failed", True), ("running", False))
    assert run_cli("search", "", "--db", str(db), check=False).returncode == 0  # the index opens

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run_cli("index", str(archive), "--db", str(db), "--json")
    result = json.loads(again.stdout)
    assert result["state"] == "completed" and result["errors"] == 0
    assert result["files_unchanged"] == committed > 0  # resumed: nothing committed is read again
    assert result["files_processed"] == result["enumerated_files"]
