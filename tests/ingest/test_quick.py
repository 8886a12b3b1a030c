"""Quick passes: a re-scan keeps unchanged patients' folders unlisted and lists the folders above them, yet
finds a study added anywhere (also to a patient's folder from years ago), files arriving in a recent study,
and files that failed last time; on a local disk and on a real Samba share. A full pass lists everything
and finds what quick passes leave to it (a file added to a series quiet for years).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from conftest import cli_json
from pacsindex.index import store
from pacsindex.ingest.progress import Progress
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import Source, source_for
from pacsindex.sources.smb import reader as smb
from samba_server import SambaServer, samba_fixture  # noqa: F401  (the "samba" fixture)

YEARS_AGO = 1577836800  # 2020-01-01: an archive's folders are old, the changes below are new


def leaf_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_dir() and not any(c.is_dir() for c in p.iterdir()))


def age(tree: Path) -> None:
    """Give every file and folder of the tree a time years ago, as an archive's are."""
    for path in sorted(tree.rglob("*"), key=lambda p: -len(p.parts)):
        os.utime(path, (YEARS_AGO, YEARS_AGO))
    os.utime(tree, (YEARS_AGO, YEARS_AGO))


def scan(db: Path, source: Source, full: bool = False) -> Progress:
    return run_index(db, [source], ScanOptions(workers=1, full=full))


def add_study(tree: Path, where: Path) -> int:
    """A new study written as a modality writes one: new folders with new files (copied from another).
    Returns how many files it has."""
    donor = leaf_folders(tree)[0]
    shutil.copytree(donor, where, copy_function=shutil.copyfile)  # files of now, as a modality writes them
    return len(list(where.iterdir()))


def patient_folders(tree: Path) -> list[Path]:
    return sorted(p for p in tree.glob("*/*/*") if p.is_dir())  # year/month/patient/study/series


def check_quick_pass(tree: Path, db: Path, source: Source) -> None:
    age(tree)
    first = scan(db, source)
    assert first.state == "completed" and first.files_read > 0
    folders = first.folders_listed
    assert folders == 1 + sum(1 for p in tree.rglob("*") if p.is_dir())

    again = scan(db, source)
    assert again.files_read == 0 and again.files_removed == 0
    assert again.files_processed == first.files_processed  # every file is still counted
    above_patients = 1 + len([p for p in tree.glob("*") if p.is_dir()]) + len(list(tree.glob("*/*")))
    assert again.folders_listed == above_patients  # the root, years and months: every patient's folder kept
    assert again.folders_kept == folders - above_patients
    assert again.folders_listed * 3 < folders

    # A study of a new patient deep in a new year, and a new study in a patient's folder from years ago.
    old_patient, other_patient = patient_folders(tree)[0], patient_folders(tree)[-1]
    added = add_study(tree, tree / "2031" / "01" / "NEW-PATIENT" / "20310101_NEW" / "1_CT")
    added += add_study(tree, old_patient / "20990101_LATE" / "1_CT")
    # A file added to a series and a file gone from another, in a patient's folders quiet for years: left to
    # the full pass.
    series_a, series_b = leaf_folders(other_patient)[0], leaf_folders(other_patient)[-1]
    extra = sorted(series_a.iterdir())[0]
    shutil.copy2(extra, series_a / "ADDED.dcm")
    sorted(series_b.iterdir())[0].unlink()
    quick = scan(db, source)
    assert quick.files_read == added and quick.files_removed == 0

    # The patient who had a new study is listed through while it is recent: a file arriving in that study
    # is found by the next quick pass.
    arriving = old_patient / "20990101_LATE" / "1_CT"
    shutil.copyfile(sorted(arriving.iterdir())[0], arriving / "ARRIVING.dcm")
    late = scan(db, source)
    assert late.files_read == 1 and late.files_removed == 0

    # A full pass lists every folder again and finds what the quick passes left.
    full = scan(db, source, full=True)
    assert full.folders_kept == 0 and full.files_read == 1 and full.files_removed == 1
    with store.reading(db) as conn:
        count = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    assert count == sum(1 for p in tree.rglob("*") if p.is_file())


def test_a_quick_pass_lists_only_what_moved_and_finds_every_change(tmp_path: Path) -> None:
    tree = tmp_path / "archive"
    write_sample(tree, patients=6, files=400)
    check_quick_pass(tree, tmp_path / "i.db", source_for(str(tree)))


def test_a_folder_with_a_failed_file_is_listed_again(tmp_path: Path) -> None:
    tree = tmp_path / "archive"
    write_sample(tree, patients=2, files=60)
    age(tree)
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


def test_a_quick_pass_finishes_what_a_stopped_first_index_left(tmp_path: Path) -> None:
    """A first index stopped half-way (Ctrl-C, a reboot) on an old archive: the folders it listed but had not
    finished have no time stored, so the next quick pass lists through their patients and reads the rest."""
    tree = tmp_path / "archive"
    write_sample(tree, patients=6, files=400)
    age(tree)
    db = tmp_path / "i.db"
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.files_processed >= 150:
            cancel.set()

    options = ScanOptions(workers=1, commit_files=20, progress_files=10)
    stopped = run_index(db, [source_for(str(tree))], options, on_progress, cancel)
    assert stopped.state == "cancelled"
    quick = scan(db, source_for(str(tree)))
    assert quick.state == "completed" and quick.files_read > 0
    with store.reading(db) as conn:
        count = conn.execute("SELECT count(*) FROM files").fetchone()[0]
    assert count == sum(1 for p in tree.rglob("*") if p.is_file())
    assert scan(db, source_for(str(tree)), full=True).files_read == 0  # nothing was left for the full pass


def test_quick_recent_hours_says_how_long_a_patient_counts_as_busy(tmp_path: Path) -> None:
    """The setting, from the environment to what `pacsindex index` lists: an archive written minutes ago is
    all "recent" under the default 48 hours (every folder above the series listed again); with 0 nothing
    is, and the patients' folders are kept unlisted."""
    tree = tmp_path / "archive"
    write_sample(tree, patients=6, files=200)
    db = str(tmp_path / "i.db")
    first = cli_json("index", str(tree), "--db", db, "--workers", "1")
    busy = cli_json("index", str(tree), "--db", db, "--workers", "1")
    quiet = cli_json(
        "index", str(tree), "--db", db, "--workers", "1", env={"PACSINDEX_QUICK_RECENT_HOURS": "0"}
    )
    leaves = len(leaf_folders(tree))  # an unchanged series folder is never listed again
    assert busy["folders_listed"] == first["folders_listed"] - leaves and busy["folders_kept"] == leaves
    above_patients = 1 + sum(1 for p in [*tree.glob("*"), *tree.glob("*/*")] if p.is_dir())
    assert quiet["folders_listed"] == above_patients < busy["folders_listed"]
    assert quiet["files_read"] == busy["files_read"] == 0
