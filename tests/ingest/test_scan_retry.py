"""Files that failed for a passing reason are read again: a file a modality still holds open on the NAS
(a sharing violation, on real Samba) is stored as a transient error and read on the next run, while a
corrupt header stays an error until the file changes or `pacsindex index --retry-errors` asks."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, write_dicom
from pacsindex.dicom import is_transient
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree, source_for
from pacsindex.sources.smb import reader as smb
from samba_server import SambaServer, samba_fixture  # noqa: F401 (the fixture)


def stored(db: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        found = {name: (status, transient) for name, status, transient in conn.execute(
            "SELECT name, status, transient FROM files")}  # fmt: skip
    conn.close()
    return found


def test_passing_failures_are_told_from_lasting_ones() -> None:
    assert is_transient(ConnectionError(errno.EIO, "network error, 3 retries"))
    assert is_transient(TimeoutError(errno.ETIMEDOUT, "timed out"))
    assert is_transient(OSError(errno.EBUSY, "the file is open in another program"))
    assert not is_transient(PermissionError(errno.EACCES, "access denied"))
    assert not is_transient(OSError(errno.EIO, "the NAS answered status 0xc0000102"))


@pytest.fixture
def smb_pool() -> Any:
    smb.close_connections()
    yield
    smb.close_connections()


@pytest.mark.samba
def test_a_file_still_being_written_is_read_on_the_next_run(
    samba: SambaServer, tmp_path: Path, smb_pool: Any
) -> None:
    import smbclient

    folder = samba.shares["archive"] / "busy"
    for i in range(3):
        write_dicom(folder / f"IM{i}.dcm", InstanceNumber=i + 1, SeriesInstanceUID="1.2.12.9")
    url = samba.url("archive", "busy")
    db = tmp_path / "i.db"
    creds = smb.SmbCredentials(samba.user, samba.password)
    unc = "\\\\127.0.0.1\\archive\\busy\\IM1.dcm"
    # Another SMB client (the modality) holds IM1.dcm open without sharing it, as Windows writers do.
    writer = smbclient.open_file(
        unc, mode="rb", share_access=None, port=samba.port, username=samba.user, password=samba.password
    )
    try:
        first = run_index(db, [source_for(url, creds)], ScanOptions(workers=1))
    finally:
        writer.close()
        smbclient.reset_connection_cache()
    assert first.errors == 1 and stored(db)["IM1.dcm"] == ("error", 1)

    second = run_index(db, [source_for(url, creds)], ScanOptions(workers=1))
    assert (second.errors, second.files_read, second.files_unchanged) == (0, 1, 2)
    assert stored(db)["IM1.dcm"] == ("dicom", 0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT file_count FROM series").fetchone()[0] == 3
    conn.close()


def test_retry_errors_reads_every_errored_file_again(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    write_dicom(root / "IM0.dcm", InstanceNumber=1)
    bad = write_dicom(root / "IM1.dcm", InstanceNumber=2)
    valid = bad.read_bytes()
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * (len(valid) - 132))  # damaged: same size
    stamp = (1_700_000_000, 1_700_000_000)
    os.utime(bad, stamp)
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    assert stored(db)["IM1.dcm"] == ("error", 0), "a lasting error, not a passing one"

    # Restored from a backup with the same size and time: an ordinary run does not look again...
    bad.write_bytes(valid)
    os.utime(bad, stamp)
    again = run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    assert again.files_read == 0 and again.errors == 1
    # ...`--retry-errors` does.
    out = run_cli("index", str(root), "--db", str(db), "--retry-errors", "--workers", "1", "--json")
    assert '"files_read": 1' in out.stdout and stored(db)["IM1.dcm"][0] == "dicom"
