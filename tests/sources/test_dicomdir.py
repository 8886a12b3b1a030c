"""DICOMDIR media: files known from the directory records without opening them; changed files re-read."""

from __future__ import annotations

import os
from pathlib import Path

from pydicom.dataset import FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian

from conftest import make_dataset
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.dicomdir import release
from pacsindex.sources.files import LocalTree


def cd_export(root: Path, images: int = 3) -> Path:
    """A CD export as modalities write it: DICOMDIR plus PT000000/ST000000/SE000000/IM00000n files."""
    fs = FileSet()
    for i in range(images):
        ds = make_dataset(InstanceNumber=i + 1, PatientName="MÜLLER^HANS", charset="ISO_IR 100", StudyID="7")
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        fs.add(ds)
    fs.write(root)
    release(fs)
    return root


def test_files_come_from_the_dicomdir_records_without_opening(tmp_path: Path) -> None:
    root = cd_export(tmp_path / "cd")
    images = sorted(p for p in root.rglob("IM*") if p.is_file())
    dicomdir_mtime = (root / "DICOMDIR").stat().st_mtime_ns
    # Spoil the last image but keep it older than the DICOMDIR: if it were opened, it would be an error.
    images[-1].write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 64)
    for p in images:
        os.utime(p, ns=(dicomdir_mtime - 10**9, dicomdir_mtime - 10**9))
    db = tmp_path / "i.db"
    p = run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    assert p.files_from_records == 2
    assert p.files_read == 2, "only the DICOMDIR and the series' first image are opened"
    assert p.non_dicom == 1 and p.errors == 0, "the DICOMDIR is not an image"
    with store.reading(db) as conn:
        (row,) = store.list_series(conn)
    assert row["file_count"] == 3 and row["PatientName"] == "MÜLLER^HANS" and row["Modality"] == "CT"

    # Now the spoiled file changes after the DICOMDIR was written: it is read for real.
    later = dicomdir_mtime + 10 * 10**9
    os.utime(images[-1], ns=(later, later))
    p = run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    assert p.files_read == 1 and p.errors == 1 and p.files_from_records == 0
    with store.reading(db) as conn:
        assert store.list_series(conn)[0]["file_count"] == 2


def test_files_newer_than_the_dicomdir_are_read(tmp_path: Path) -> None:
    root = cd_export(tmp_path / "cd")
    later = (root / "DICOMDIR").stat().st_mtime_ns + 10 * 10**9
    for p in root.rglob("IM*"):
        if p.is_file():
            os.utime(p, ns=(later, later))
    p = run_index(tmp_path / "i.db", [LocalTree(str(root))], ScanOptions(workers=1))
    assert p.files_from_records == 0 and p.files_read == 4 and p.series_count == 1


def test_broken_dicomdir_means_files_are_read_one_by_one(tmp_path: Path) -> None:
    root = cd_export(tmp_path / "cd")
    (root / "DICOMDIR").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00")
    p = run_index(tmp_path / "i.db", [LocalTree(str(root))], ScanOptions(workers=1))
    assert p.files_from_records == 0 and p.series_count == 1 and p.files_processed == 4
