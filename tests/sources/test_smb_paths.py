"""One NAS folder, one set of rows (real Samba): share and folder names are case-insensitive, so every
spelling of a root indexes the same rows; a root copied from a file manager (`%20`) is decoded; the advice
to map the share quotes names with spaces and keeps the folder, is not offered for a share that does not
exist, and the slow-link advice stays in the final summary and index_status.json."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, write_dicom
from pacsindex.errors import ShareNotFound
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for
from pacsindex.sources.smb import reader as smb
from pacsindex.sources.smb.conn import url_for
from samba_server import SambaServer, TcpProxy, samba_fixture, start_samba  # noqa: F401 (the fixture)

pytestmark = pytest.mark.samba


@pytest.fixture(autouse=True)
def fresh_connections() -> Any:
    smb.close_connections()
    yield
    smb.close_connections()


def creds(server: SambaServer) -> smb.SmbCredentials:
    return smb.SmbCredentials(server.user, server.password)


def rows(db: Path) -> tuple[int, int, list[str]]:
    with sqlite3.connect(db) as conn:
        files = conn.execute("SELECT count(*) FROM files").fetchone()[0]
        counted = conn.execute("SELECT coalesce(sum(file_count), 0) FROM series").fetchone()[0]
        dirs = [r[0] for r in conn.execute("SELECT path FROM dirs ORDER BY path")]
    conn.close()
    return files, counted, dirs


def test_every_spelling_of_a_folder_indexes_the_same_rows(samba: SambaServer, tmp_path: Path) -> None:
    folder = samba.shares["archive"] / "Flaky"
    for i in range(4):
        write_dicom(folder / "CT" / f"IM{i}.dcm", InstanceNumber=i + 1, SeriesInstanceUID="1.2.12.10")
    db = tmp_path / "i.db"
    host = f"127.0.0.1:{samba.port}"
    spellings = [
        f"smb://{host}/archive/flaky",
        f"smb://{host}/ARCHIVE/FLAKY",
        url_for("127.0.0.1", "Archive", "\\Flaky", samba.port),  # as the saved NAS settings build it
        f"smb://{host}/archive/Flaky/",
    ]
    for n, url in enumerate(spellings):
        p = run_index(db, [source_for(url, creds(samba))], ScanOptions(workers=1))
        assert p.state == "completed" and p.errors == 0
        assert p.files_read == (4 if n == 0 else 0) and p.files_unchanged == (0 if n == 0 else 4), url
        files, counted, dirs = rows(db)
        assert (files, counted) == (4, 4), f"{url} indexed the files again"
        assert dirs == [f"smb://{host}/archive/Flaky", f"smb://{host}/archive/Flaky/CT"], "one spelling"


def test_rows_an_older_index_kept_under_other_spellings_are_dropped(
    samba: SambaServer, tmp_path: Path
) -> None:
    folder = samba.shares["archive"] / "Twice"
    for i in range(3):
        write_dicom(folder / f"IM{i}.dcm", InstanceNumber=i + 1, SeriesInstanceUID="1.2.12.11")
    db = tmp_path / "i.db"
    host = f"127.0.0.1:{samba.port}"
    run_index(db, [source_for(f"smb://{host}/archive/twice", creds(samba))], ScanOptions(workers=1))
    with sqlite3.connect(db) as conn:  # as an index from before one spelling per folder held it
        conn.execute("UPDATE dirs SET path = replace(path, '/archive/Twice', '/Archive/TWICE')")
    conn.close()
    p = run_index(db, [source_for(f"smb://{host}/ARCHIVE/twice", creds(samba))], ScanOptions(workers=1))
    assert p.files_read == 3 and p.files_removed == 3
    assert rows(db) == (3, 3, [f"smb://{host}/archive/Twice"])


@pytest.fixture(scope="module")
def spaced(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Samba whose share has a space in its name, as practices name them."""
    base = tmp_path_factory.mktemp("spaced")
    share = base / "share"
    for i in range(3):
        write_dicom(share / "2019" / "MR" / f"IM{i}.dcm", InstanceNumber=i + 1, SeriesInstanceUID="1.2.12.20")
    server = start_samba(base / "server", {"Image Archiving": share})
    yield server
    server.stop()


def test_a_copied_address_with_escapes_is_decoded(spaced: SambaServer, tmp_path: Path) -> None:
    url = f"smb://127.0.0.1:{spaced.port}/Image%20Archiving/2019"
    p = run_index(tmp_path / "i.db", [source_for(url, creds(spaced))], ScanOptions(workers=1))
    assert p.state == "completed" and p.errors == 0 and p.files_read == 3 and p.series_count == 1


def test_the_slow_link_advice_quotes_the_share_keeps_the_folder_and_stays(
    spaced: SambaServer, tmp_path: Path
) -> None:
    proxy = TcpProxy(spaced.port, delay_s=0.015)
    status = tmp_path / "index_status.json"
    try:
        url = f"smb://127.0.0.1:{proxy.port}/Image Archiving/2019"
        out = run_cli(
            "index", url, "--db", str(tmp_path / "i.db"), "--workers", "1", "--status-file", str(status),
            env=spaced.env,
        )  # fmt: skip
    finally:
        proxy.close()
    advice = 'net use Z: "\\\\127.0.0.1\\Image Archiving") and index the drive: pacsindex index "Z:\\2019"'
    assert advice in out.stderr.strip().splitlines()[-1], "the final summary keeps the advice"
    final = json.loads(status.read_text(encoding="utf-8"))
    assert final["state"] == "completed" and advice in final["message"]


def test_no_advice_to_map_a_share_that_does_not_exist(spaced: SambaServer) -> None:
    with pytest.raises(ShareNotFound) as caught:
        source_for(f"smb://127.0.0.1:{spaced.port}/Image%20Archive", creds(spaced)).check()
    assert "no share named 'Image Archive'" in str(caught.value) and "net use" not in str(caught.value)
