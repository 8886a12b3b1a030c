"""Fixtures that build DICOM trees (with the traps real NAS trees hold) and indexes in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from support_web import LiveServer, serve

ROOT = Path(__file__).resolve().parent.parent


def make_dataset(
    *,
    PatientName: str = "DOE^JANE",
    PatientID: str = "PID-1",
    StudyInstanceUID: str | None = "1.2.3.4",
    SeriesInstanceUID: str | None = "1.2.3.4.1",
    SeriesNumber: int | None = 1,
    InstanceNumber: int = 1,
    Modality: str = "CT",
    SeriesDescription: str = "AXIAL",
    StudyDescription: str = "CT CHEST",
    StudyDate: str = "20240115",
    AccessionNumber: str = "ACC1",
    charset: str | None = None,
    rows: int = 4,
    private_blob: int = 0,
    **extra: Any,
) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = StudyDate
    ds.StudyTime = "101500"
    ds.AccessionNumber = AccessionNumber
    ds.Modality = Modality
    ds.InstitutionName = "Netcare Milpark Hospital"
    ds.ReferringPhysicianName = "DR^NAIDOO"
    ds.StudyDescription = StudyDescription
    ds.SeriesDescription = SeriesDescription
    if private_blob:
        ds.add_new(0x00090010, "LO", "ACME BLOB")
        ds.add_new(0x00091000, "OB", b"\x00" * private_blob)
    ds.PatientName = PatientName
    ds.PatientID = PatientID
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "F"
    if StudyInstanceUID:
        ds.StudyInstanceUID = StudyInstanceUID
    if SeriesInstanceUID:
        ds.SeriesInstanceUID = SeriesInstanceUID
    if SeriesNumber is not None:
        ds.SeriesNumber = SeriesNumber
    ds.InstanceNumber = InstanceNumber
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.Rows = rows
    ds.Columns = rows
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x01\x02" * rows * rows
    return ds


def write_dicom(
    path: Path, ds: Dataset | None = None, *, implicit: bool = False, preamble: bool = True, **fields: Any
) -> Path:
    """Write a Part 10 file (or, with preamble=False, a raw dataset with no preamble and no meta)."""
    ds = ds if ds is not None else make_dataset(**fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not preamble:
        from pydicom.filewriter import write_dataset

        buf = pydicom.filebase.DicomBytesIO()
        buf.is_little_endian = True
        buf.is_implicit_VR = True
        write_dataset(buf, ds)
        path.write_bytes(buf.getvalue())
        return path
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


@pytest.fixture
def dicom_tree(tmp_path: Path) -> Path:
    """A small clean tree: 2 patients, 3 series, 7 files."""
    root = tmp_path / "archive"
    for i in range(3):
        write_dicom(
            root / "MULLER" / "CT" / f"IM{i}.dcm",
            PatientName="MÜLLER^HANS",
            PatientID="PID-M",
            charset="ISO_IR 100",
            SeriesInstanceUID="1.2.3.4.1",
            InstanceNumber=i + 1,
        )
    for i in range(2):
        write_dicom(
            root / "MULLER" / "SCOUT" / f"IM{i}.dcm",
            PatientName="MÜLLER^HANS",
            PatientID="PID-M",
            charset="ISO_IR 100",
            SeriesInstanceUID="1.2.3.4.2",
            SeriesNumber=2,
            SeriesDescription="SCOUT",
            InstanceNumber=i + 1,
        )
    for i in range(2):
        write_dicom(
            root / "IVANOV" / f"IMG{i}",
            PatientName="Иванов^Иван",
            PatientID="PID-I",
            charset="ISO_IR 144",
            StudyInstanceUID="9.8.7",
            SeriesInstanceUID="9.8.7.1",
            Modality="MR",
            StudyDescription="MR BRAIN",
            SeriesDescription="T2 AX",
            StudyDate="20230301",
            AccessionNumber="ACC9",
            InstanceNumber=i + 1,
        )
    return root


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pacsindex ...` as a user would, in a separate process."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PACSINDEX_DB", None) if env is None or "PACSINDEX_DB" not in env else None
    proc = subprocess.run(
        [sys.executable, "-m", "pacsindex", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"pacsindex {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def cli_json(*args: str, **kw: Any) -> Any:
    return json.loads(run_cli(*args, "--json", **kw).stdout)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


# -- the live server (tests/support_web.py) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """A factory: `live_server(users={"thandi": False}, settings=..., scan_options=...)` starts the app on a
    free port (see support_web.serve); every server it started stops at the end of the module."""
    with ExitStack() as stack:

        def make(**kwargs: Any) -> LiveServer:
            return stack.enter_context(serve(tmp_path_factory.mktemp("live"), **kwargs))

        yield make


@pytest.fixture
def open_fileset() -> Iterator[Callable[[Path], FileSet]]:
    """pydicom's FileSet for a DICOMDIR, its staging folder removed when the test ends (pydicom leaves that
    to the garbage collector, whose ResourceWarning would land on whichever test runs then)."""
    opened: list[FileSet] = []

    def open_(path: Path) -> FileSet:
        opened.append(FileSet(path))
        return opened[-1]

    yield open_
    for fs in opened:
        fs._stage["t"].cleanup()
