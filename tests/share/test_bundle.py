"""A share's zip as a viewer sees it: a 3-series study in one zip whose DICOMDIR pydicom's FileSet reads,
every file it names present and byte-identical to the archive; dcmtk and dicom3tools accept the
DICOMDIR; README.txt and MANIFEST.txt say what is there; files gone since indexing are listed; a
de-identified zip holds none of the original names, IDs or UIDs and the same pixels; any byte range of a
zip equals that slice of the whole."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet

from conftest import write_dicom
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.share.bundle import DICOMDIR, MANIFEST, README, ShareZip
from pacsindex.share.deid import Deidentifier, burned_in_reason
from pacsindex.sources.files import LocalTree

STUDY_UID = "1.2.826.0.1.3680043.77.17"
PATIENT = "NKOSI^THABO"
PATIENT_ID = "8001015009087"


def study(tmp_path: Path, *, modalities: tuple[str, ...] = ("CT", "CT", "MR")) -> tuple[Path, list[Any]]:
    """A study of len(modalities) series (3, 2, 4 ... files), indexed; the parts a share of it holds."""
    root = tmp_path / "archive"
    for s, modality in enumerate(modalities, start=1):
        for i in range((3, 2, 4, 1)[s - 1]):
            ds_path = root / PATIENT / f"S{s}" / f"slice {i:03d}.dcm"
            write_dicom(
                ds_path,
                PatientName=PATIENT,
                PatientID=PATIENT_ID,
                StudyInstanceUID=STUDY_UID,
                SeriesInstanceUID=f"{STUDY_UID}.{s}",
                SeriesNumber=s,
                SeriesDescription=f"SERIES {s}",
                Modality=modality,
                InstanceNumber=i + 1,
                rows=8 + i,
                StudyID="S17",
                private_blob=32,
            )
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    with store.reading(db) as conn:
        keys = [r[0] for r in conn.execute("SELECT SeriesKey FROM series ORDER BY SeriesNumber")]
        parts = []
        for key in keys:
            series = store.get_series(conn, key)
            assert series is not None
            parts.append((series, list(store.series_files(conn, series.pop("series_id")))))
    return root, parts


def unzip(data: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        zf.extractall(into)
    return into


def test_a_three_series_study_is_one_zip_with_a_dicomdir_any_viewer_opens(tmp_path: Path) -> None:
    _, parts = study(tmp_path)
    z = ShareZip(parts, made_at=1_765_000_000)
    data = b"".join(z)
    assert len(data) == z.size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = [i.filename for i in zf.infolist()]
        readme = zf.read(README).decode()
        manifest = zf.read(MANIFEST).decode()
    assert names[:3] == [README, MANIFEST, DICOMDIR]
    assert all(
        len(part) <= 8 and part.isupper() or part.isdigit() for n in names[3:] for part in n.split("/")
    )
    assert "DICOMDIR" in readme and "RadiAnt" in readme and "Weasis" in readme
    assert "Files: 9 in the index, 9 in this zip, 0 missing" in manifest
    out = unzip(data, tmp_path / "cd")
    fs = FileSet(out / DICOMDIR)
    sources = {f["SOPInstanceUID"]: f["path"] for _, files in parts for f in files}
    assert len(fs) == len(sources) == 9
    assert {i.SOPInstanceUID for i in fs} == set(sources)
    for instance in fs:
        assert Path(instance.path).read_bytes() == Path(sources[instance.SOPInstanceUID]).read_bytes()
    assert fs.find_values("PatientID") == [PATIENT_ID]
    assert sorted(fs.find_values("SeriesInstanceUID")) == [f"{STUDY_UID}.{s}" for s in (1, 2, 3)]


@pytest.mark.skipif(not shutil.which("dcmdump") or not shutil.which("dciodvfy"), reason="dcmtk/dicom3tools")
def test_dcmtk_and_dicom3tools_read_the_dicomdir(tmp_path: Path) -> None:
    _, parts = study(tmp_path)
    out = unzip(b"".join(ShareZip(parts, made_at=1_765_000_000)), tmp_path / "cd")
    dump = subprocess.run(["dcmdump", str(out / DICOMDIR)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.count("DirectoryRecordType") == 1 + 1 + 3 + 9
    assert "Offset of the Next Directory Record" in dump.stdout or "0004,1400" in dump.stdout
    check = subprocess.run(["dciodvfy", str(out / DICOMDIR)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
    assert not errors, check.stdout + check.stderr


def test_files_gone_since_indexing_are_listed_not_dropped_silently(tmp_path: Path) -> None:
    _, parts = study(tmp_path)
    gone = parts[1][1][0]["path"]
    Path(gone).unlink()
    z = ShareZip(parts, made_at=1_765_000_000)
    with zipfile.ZipFile(io.BytesIO(b"".join(z))) as zf:
        manifest = zf.read(MANIFEST).decode()
        assert len([n for n in zf.namelist() if n.startswith("DICOM/")]) == 8
    assert "Files: 9 in the index, 8 in this zip, 1 missing" in manifest
    assert "missing: not found" in manifest
    assert PATIENT.split("^")[0] not in manifest and "archive" not in manifest


def test_any_byte_range_is_that_slice_of_the_whole(tmp_path: Path) -> None:
    _, parts = study(tmp_path)
    z = ShareZip(parts, made_at=1_765_000_000, chunk=1000)
    whole = b"".join(z.chunks())
    rng = random.Random(17)
    crcs: dict[int, int] = {}
    for _ in range(60):
        a = rng.randrange(z.size)
        b = rng.randrange(a, z.size + 1)
        assert b"".join(z.chunks(a, b, crcs if rng.random() < 0.5 else None)) == whole[a:b]
    again = ShareZip(parts, made_at=1_765_000_000)
    assert hashlib.sha256(b"".join(again)).digest() == hashlib.sha256(whole).digest()  # same bytes each time


def pixels(path: Path | io.BytesIO) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array


def test_a_deidentified_zip_holds_no_identifiers_and_the_same_pixels(tmp_path: Path) -> None:
    root, parts = study(tmp_path)
    z = ShareZip(parts, made_at=1_765_000_000, deidentifier=Deidentifier("seed-for-this-share"))
    data = b"".join(z)
    assert len(data) == z.size  # the Content-Length was exact
    originals = {
        PATIENT.encode(),
        b"NKOSI",
        PATIENT_ID.encode(),
        STUDY_UID.encode(),
        b"Netcare Milpark",
        b"NAIDOO",
        b"ACC1",
    }
    sources = [f for _, files in parts for f in files]
    originals |= {f["SOPInstanceUID"].encode() for f in sources}
    for needle in originals:
        assert needle not in data, needle
    out = unzip(data, tmp_path / "anon")
    fs = FileSet(out / DICOMDIR)
    assert len(fs) == 9
    by_instance = {}
    for instance in fs:
        ds = instance.load()
        assert ds.PatientName != PATIENT and ds.PatientID != PATIENT_ID and ds.PatientBirthDate == ""
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"  # PS3.15 Basic Profile
        # dicognito says PatientIdentityRemoved YES only where the images say BurnedInAnnotation NO
        assert ds.get("PatientIdentityRemoved") in (None, "YES")
        assert ds.StudyInstanceUID == fs.find_values("StudyInstanceUID")[0]  # one new study UID for all
        assert not any(elem.tag.is_private for elem in ds)
        by_instance[(int(ds.SeriesNumber), int(ds.InstanceNumber))] = ds
    for f, (series, _) in [(f, p) for p in parts for f in p[1]]:
        anon = by_instance[(int(series["SeriesNumber"]), int(f["InstanceNumber"]))]
        assert np.array_equal(anon.pixel_array, pixels(Path(f["path"])))  # pixel for pixel
    other = b"".join(ShareZip(parts, made_at=1_765_000_000, deidentifier=Deidentifier("another share")))
    with zipfile.ZipFile(io.BytesIO(other)) as zf:
        other_uid = pydicom.dcmread(io.BytesIO(zf.read(zf.namelist()[3]))).StudyInstanceUID
    assert other_uid != fs.find_values("StudyInstanceUID")[0]  # replacements differ between shares
    assert all(p.read_bytes() for p in root.rglob("*.dcm"))  # the archive is untouched (read-only use)


def test_burned_in_annotation_is_flagged() -> None:
    assert burned_in_reason("US", None) and burned_in_reason("SC", "") and burned_in_reason("OT", None)
    assert (
        burned_in_reason("CT", "YES")
        and not burned_in_reason("CT", "NO")
        and not burned_in_reason("MR", None)
    )
