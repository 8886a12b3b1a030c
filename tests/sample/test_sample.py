"""The synthetic NAS archive: exact counts, the NAS folder layout, determinism, character sets, the mix
of file kinds real PACS exports have, private tags, pixel data, and files exactly as pydicom writes them."""

from __future__ import annotations

import dataclasses
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from pacsindex.sample.archive import SampleSummary, write_sample

pytestmark = pytest.mark.filterwarnings("error")

Sample = tuple[SampleSummary, Path, dict[Path, Dataset]]  # (summary, root, every DICOM file read back)
OTHER_NAMES = {"Thumbs.db", "desktop.ini", "notes.txt"}
SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
}
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
# (PatientName, SpecificCharacterSet, PatientID, Python codec of that character set)
FIXED = [
    ("MÜLLER^HANS", "ISO_IR 100", "PID-MUELLER", "latin_1"),
    ("Иванов^Иван", "ISO_IR 144", "PID-IVANOV", "iso8859_5"),
    ("Παπαδόπουλος^Νίκος", "ISO_IR 126", "PID-PAPA", "iso8859_7"),
    ("VAN DER MERWE^PIETER", "ISO_IR 192", "8001015009087", "utf_8"),
    ("DLAMINI^THANDO", None, "PID-DLAMINI", "ascii"),
]


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def dicom_files(root: Path) -> list[Path]:
    return [p for p in all_files(root) if p.name not in OTHER_NAMES]


def is_part10(path: Path) -> bool:
    with path.open("rb") as fp:
        return fp.read(132)[128:] == b"DICM"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("nas") / "archive"
    summary = write_sample(root)
    return summary, root, {p: pydicom.dcmread(p, force=True) for p in dicom_files(root)}


def test_tree_holds_exactly_the_requested_files(sample: Sample) -> None:
    summary, root, datasets = sample
    assert summary.root == str(root)
    assert summary.files == len(datasets) == 400
    others = [p for p in all_files(root) if p.name in OTHER_NAMES]
    assert summary.other_files == len(others)
    assert summary.patients == len({ds.PatientID for ds in datasets.values()}) == 20
    assert summary.studies == len({ds.StudyInstanceUID for ds in datasets.values()})
    assert summary.series == len({ds.SeriesInstanceUID for ds in datasets.values()})
    assert len({ds.SOPInstanceUID for ds in datasets.values()}) == 400


def test_folders_follow_the_nas_layout(sample: Sample) -> None:
    _, root, datasets = sample
    for path, ds in datasets.items():
        year, month, patient, study, series, _name = path.relative_to(root).parts
        assert (year, month) == (ds.StudyDate[:4], ds.StudyDate[4:6])
        assert patient.startswith(f"{ds.PatientID}_")
        assert study == f"{ds.StudyDate}_{ds.AccessionNumber}"
        assert series.startswith(f"{ds.SeriesNumber}_{ds.Modality}_")
    folders = {p.relative_to(root).parts[2] for p in datasets}
    assert {"PID-MUELLER_MÜLLER", "PID-IVANOV_ИВАНОВ", "8001015009087_VAN_DER_MERWE"} <= folders


def test_same_seed_writes_the_same_archive(tmp_path: Path) -> None:
    first = write_sample(tmp_path / "a", patients=8, files=60, seed=7)
    again = write_sample(tmp_path / "b", patients=8, files=60, seed=7)
    other = write_sample(tmp_path / "c", patients=8, files=60, seed=8)
    assert first == dataclasses.replace(again, root=first.root)
    a, b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))

    def uids(root: Path) -> set[str]:
        return {pydicom.dcmread(p, force=True).SOPInstanceUID for p in dicom_files(root)}

    assert uids(tmp_path / "a") == uids(tmp_path / "b")
    assert other.files == 60
    assert not uids(tmp_path / "a") & uids(tmp_path / "c")


@pytest.mark.parametrize(("name", "charset", "patient_id", "codec"), FIXED)
def test_fixed_patients_read_back_with_their_names(
    sample: Sample, name: str, charset: str | None, patient_id: str, codec: str
) -> None:
    _, _, datasets = sample
    mine = {p: ds for p, ds in datasets.items() if ds.PatientID == patient_id}
    assert mine
    for path, ds in mine.items():
        assert str(ds.PatientName) == name
        assert ds.get("SpecificCharacterSet") == charset
        assert name.encode(codec) in path.read_bytes()  # encoded in the declared set, not blindly UTF-8


def test_fixed_south_african_id_number_is_valid() -> None:
    digits = [int(d) for d in "8001015009087"]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    assert total % 10 == 0


def test_other_patients_have_pid_numbers_and_person_names(sample: Sample) -> None:
    _, _, datasets = sample
    others = {
        ds.PatientID: str(ds.PatientName)
        for ds in datasets.values()
        if ds.PatientID not in {f[2] for f in FIXED}
    }
    assert len(others) == 15
    assert all(re.fullmatch(r"PID-\d{6}", pid) for pid in others)
    assert all(re.fullmatch(r"[^\^]+\^[^\^]+", name) for name in others.values())
    referrers = {str(ds.ReferringPhysicianName) for ds in datasets.values()}
    assert any(r.startswith("DR^") for r in referrers)


def test_archive_mixes_what_real_pacs_exports_mix(sample: Sample) -> None:
    _, _, datasets = sample
    no_extension = [p for p in datasets if not p.suffix]
    assert no_extension and all(re.fullmatch(r"IM\d{5}", p.name) for p in no_extension)
    assert {ds.Modality for ds in datasets.values()} == {"CT", "MR", "CR", "US"}
    syntaxes = Counter(
        str(ds.file_meta.TransferSyntaxUID) if is_part10(p) else "raw" for p, ds in datasets.items()
    )
    assert syntaxes[EXPLICIT] > syntaxes[IMPLICIT] > 0
    assert syntaxes["raw"] > 0  # preamble-less datasets, as old archives hold
    for path, ds in datasets.items():
        assert ds.SOPClassUID == SOP_CLASSES[ds.Modality]
        if is_part10(path):
            assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    per_series = Counter((ds.SeriesInstanceUID, ds.Modality) for ds in datasets.values())
    assert all(n <= 3 for (_uid, modality), n in per_series.items() if modality in ("CR", "US"))
    assert max(n for (_uid, modality), n in per_series.items() if modality in ("CT", "MR")) > 3


def test_private_tags_before_and_after_group_0020(sample: Sample) -> None:
    _, _, datasets = sample
    creators: set[str] = set()
    for ds in datasets.values():
        private = [elem for elem in ds if elem.tag.is_private]
        data = [elem for elem in private if not elem.tag.is_private_creator]
        creators |= {str(elem.value) for elem in private if elem.tag.is_private_creator}
        assert len(data) == 20
        assert any(elem.tag.group < 0x0020 for elem in data) and any(elem.tag.group > 0x0020 for elem in data)
    assert {"GEMS_ACQU_01", "SIEMENS CSA HEADER"} & creators


def test_pixel_data_has_the_requested_size(tmp_path: Path) -> None:
    write_sample(tmp_path, patients=6, files=40, rows=16, columns=24)
    for path in dicom_files(tmp_path):
        ds = pydicom.dcmread(path, force=True)
        assert (ds.Rows, ds.Columns, ds.PhotometricInterpretation) == (16, 24, "MONOCHROME2")
        assert ds.BitsAllocated == (8 if ds.Modality == "US" else 16)
        assert len(ds.PixelData) == 16 * 24 * ds.BitsAllocated // 8
    pytest.importorskip("numpy")
    image = pydicom.dcmread(dicom_files(tmp_path)[0], force=True).pixel_array
    assert image.shape == (16, 24) and image.max() > image.min()


def test_every_file_is_what_pydicom_itself_writes(sample: Sample) -> None:
    _, _, datasets = sample
    for path in datasets:
        original = path.read_bytes()
        ds = pydicom.dcmread(path, force=True)
        part10 = is_part10(path)
        for tag in list(ds.keys()):
            ds[tag]  # decode every value, so pydicom encodes it afresh below
        if part10:
            for tag in list(ds.file_meta.keys()):
                ds.file_meta[tag]
            explicit = ds.file_meta.TransferSyntaxUID == EXPLICIT
            for elem in ds:
                if explicit and not elem.tag.is_private and " or " not in dictionary_VR(elem.tag):
                    assert elem.VR == dictionary_VR(elem.tag), (path, elem.tag)
        out = io.BytesIO()
        if part10:
            pydicom.dcmwrite(out, ds, enforce_file_format=True)
        else:
            pydicom.dcmwrite(out, ds, implicit_vr=True, little_endian=True)
        assert out.getvalue() == original, path


def test_fewer_files_than_series_still_writes_exactly_that_many(tmp_path: Path) -> None:
    summary = write_sample(tmp_path / "small", patients=5, files=3)
    assert (summary.files, summary.patients) == (3, 3)
    assert summary.series <= 3
    assert len(dicom_files(tmp_path / "small")) == 3
    empty = write_sample(tmp_path / "empty", patients=5, files=0)
    assert (empty.files, empty.patients) == (0, 0)
    assert (tmp_path / "empty").is_dir() and not dicom_files(tmp_path / "empty")


def test_progress_is_reported_along_the_way_and_at_the_end(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    write_sample(tmp_path, patients=10, files=450, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(200, 450), (400, 450), (450, 450)]


def test_writes_into_an_existing_folder_without_deleting(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    summary = write_sample(tmp_path, patients=3, files=10)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert len(all_files(tmp_path)) == 1 + summary.files + summary.other_files
    nested = write_sample(tmp_path / "new" / "deeper", patients=1, files=2)
    assert nested.files == len(dicom_files(tmp_path / "new" / "deeper")) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(patients=0, files=5),
        dict(rows=0),
        dict(files=-1),
        dict(private_tags=-1),
        dict(private_tags=10_000),
    ],
)
def test_rejects_impossible_requests(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        write_sample(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())
