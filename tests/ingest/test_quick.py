"""Quick passes: a re-scan lists only folders whose time moved (and folders that hold folders), yet finds a
study added anywhere, a file added to or removed from a series, and files that failed last time; on a
local disk and on a real Samba share. A full pass lists everything."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pacsindex.index import store
from pacsindex.ingest.progress import Progress
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import Source, source_for
from pacsindex.sources.smb import reader as smb
from samba_server import SambaServer, samba_fixture  # noqa: F401  (the "samba" fixture)


def leaf_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_dir() and not any(c.is_dir() for c in p.iterdir()))


def scan(db: Path, source: Source, full: bool = False) -> Progress:
    return run_index(db, [source], ScanOptions(workers=1, full=full))


def add_study(tree: Path, where: Path) -> None:
    """A new study written as a modality writes one: new folders with new files (copied from another)."""
    donor = leaf_folders(tree)[0]
    shutil.copytree(donor, where)


def check_quick_pass(tree: Path, db: Path, source: Source) -> None:
    first = scan(db, source)
    assert first.state == "completed" and first.files_read > 0
    folders = first.folders_listed
    leaves = leaf_folders(tree)

    again = scan(db, source)
    assert again.files_read == 0 and again.files_removed == 0
    assert again.files_processed == first.files_processed  # every file is still counted
    assert again.folders_kept == len(leaves)  # no series folder was listed ...
    assert again.folders_listed == folders - len(leaves)  # ... only the folders that hold folders

    # A study written deep in the tree, a file added to one series and a file gone from another.
    add_study(tree, tree / "2031" / "01" / "NEW-PATIENT" / "CT-1")
    series_a, series_b = leaves[1], leaves[2]
    extra = sorted(series_a.iterdir())[0]
    shutil.copy2(extra, series_a / "ADDED.dcm")
    gone = sorted(series_b.iterdir())[0]
    gone.unlink()
    quick = scan(db, source)
    new_files = len(list((tree / "2031").rglob("*.dcm")))
    assert quick.files_read == new_files + 1
    assert quick.files_removed == 1
    assert quick.folders_kept == len(leaves) - 2
    with store.reading(db) as conn:
        count = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    assert count == sum(1 for p in tree.rglob("*") if p.is_file())

    # A full pass lists every folder again and finds nothing more to do.
    full = scan(db, source, full=True)
    assert full.folders_kept == 0 and full.files_read == 0 and full.files_removed == 0


def test_a_quick_pass_lists_only_what_moved_and_finds_every_change(tmp_path: Path) -> None:
    tree = tmp_path / "archive"
    write_sample(tree, patients=6, files=400)
    check_quick_pass(tree, tmp_path / "i.db", source_for(str(tree)))


def test_a_folder_with_a_failed_file_is_listed_again(tmp_path: Path) -> None:
    tree = tmp_path / "archive"
    write_sample(tree, patients=2, files=60)
    db = tmp_path / "i.db"
    series = leaf_folders(tree)[0]
    broken = sorted(series.iterdir())[0]
    good = broken.read_bytes()
    broken.write_bytes(good[:200])  # cut short: an error this run
    stamp = broken.stat().st_mtime_ns
    first = scan(db, source_for(str(tree)))
    assert first.errors == 1
    broken.write_bytes(good)  # mended in place, the folder's time unchanged
    os.utime(broken, ns=(stamp + 10**9, stamp + 10**9))
    again = scan(db, source_for(str(tree)))
    assert again.errors == 0 and again.files_read == 1  # its folder was listed, the file read again


@pytest.mark.samba
def test_a_quick_pass_over_smb_finds_a_new_study(samba: SambaServer, tmp_path: Path) -> None:
    smb.close_connections()
    tree = samba.shares["archive"] / "quick"
    write_sample(tree, patients=4, files=200)
    source = source_for(samba.url("archive", "quick"), smb.SmbCredentials(samba.user, samba.password))
    try:
        check_quick_pass(tree, tmp_path / "smb.db", source)
    finally:
        smb.close_connections()
