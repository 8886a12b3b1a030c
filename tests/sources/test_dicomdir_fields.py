"""A CD/DVD export indexed through its DICOMDIR (a real pydicom FileSet, which writes only the keys the
standard requires per record) keeps every field the index keeps: the same as without the DICOMDIR, while
opening one file per series instead of every file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pydicom.dataset import FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian

from conftest import make_dataset, run_cli
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.dicomdir import release
from pacsindex.sources.files import LocalTree

SERIES = [("1.2.12.1.1", 1, "AX T1"), ("1.2.12.1.2", 2, "COR PD FATSAT"), ("1.2.12.1.3", 3, "SAG T2")]


def cd_export(root: Path, per_series: int = 4) -> Path:
    fs = FileSet()
    for uid, number, description in SERIES:
        for i in range(per_series):
            ds = make_dataset(
                PatientName="MÜLLER^HANS",
                PatientID="8001015009087",
                charset="ISO_IR 100",
                StudyInstanceUID="1.2.12.1",
                SeriesInstanceUID=uid,
                SeriesNumber=number,
                SeriesDescription=description,
                InstanceNumber=i + 1,
                Modality="MR",
                StudyID="77",
                InsurancePlanIdentification="GEMS",
                InstitutionAddress="Milpark, Johannesburg",
                BodyPartExamined="KNEE",
            )
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            fs.add(ds)
    fs.write(root)
    release(fs)
    return root


def everything(db: Path, root: Path) -> dict[str, Any]:
    """Every field the index keeps, per series, with paths relative to the export."""
    out: dict[str, Any] = {}
    with store.reading(db) as conn:
        for row in store.list_series(conn):
            detail = store.get_series(conn, row["SeriesKey"])
            assert detail is not None
            files = list(store.series_files(conn, detail.pop("series_id")))
            for f in files:
                f["path"] = str(Path(f["path"]).relative_to(root))
                f["mtime_ns"] = None
            out[row["SeriesKey"]] = {**detail, "files": files}
    return out


def test_every_field_is_the_same_with_and_without_the_dicomdir(tmp_path: Path) -> None:
    with_dir = cd_export(tmp_path / "cd")
    without = tmp_path / "copy"
    shutil.copytree(with_dir, without)
    (without / "DICOMDIR").unlink()

    p = run_index(tmp_path / "with.db", [LocalTree(str(with_dir))], ScanOptions(workers=1))
    q = run_index(tmp_path / "without.db", [LocalTree(str(without))], ScanOptions(workers=1))
    assert p.files_read == 1 + len(SERIES), "the DICOMDIR and one header per series"
    assert p.files_from_records == 3 * len(SERIES) and q.files_read == 4 * len(SERIES)

    indexed = everything(tmp_path / "with.db", with_dir)
    assert indexed == everything(tmp_path / "without.db", without)
    fatsat = next(s for s in indexed.values() if s["SeriesNumber"] == 2)
    assert fatsat["SeriesDescription"] == "COR PD FATSAT" and fatsat["PatientBirthDate"] == "19800101"
    assert fatsat["PatientSex"] == "F" and fatsat["InstitutionName"] == "Netcare Milpark Hospital"
    assert (
        fatsat["medical_aid"] == "Government Employees Medical Scheme" and fatsat["sa_id"] == "8001015009087"
    )
    assert fatsat["hospital"] == "Netcare Milpark Hospital" and fatsat["BodyPartExamined"] == "KNEE"
    assert [f["InstanceNumber"] for f in fatsat["files"]] == [1, 2, 3, 4]

    found = json.loads(run_cli("search", "fatsat", "--db", str(tmp_path / "with.db"), "--json").stdout)
    assert [r["SeriesDescription"] for r in found] == ["COR PD FATSAT"]
