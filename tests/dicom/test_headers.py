"""Header reads: the traps real archives hold, and the fast path agreeing with pydicom's own parser."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import make_dataset, write_dicom
from pacsindex.dicom.headers import FIELD_TABLE, read_header, series_key, sniff
from pacsindex.sources.files import LocalReader

PYDICOM_DATA = Path(pydicom.__file__).parent / "data"


class CountingReader:
    """Opens files read-only like the real reader and counts the bytes actually read."""

    def __init__(self) -> None:
        self.bytes_read = 0

    def open(self, path: str) -> IO[bytes]:
        reader = self

        class Counted(io.BufferedReader):
            def read(self, n: int | None = -1) -> bytes:
                data = super().read(n)
                reader.bytes_read += len(data)
                return data

        return Counted(io.FileIO(path, "r"))


def read(path: Path, fast: bool = True):
    return read_header(str(path), LocalReader().open, path.stat().st_size, path.name, fast=fast)


def test_field_table_matches_pydicom_dictionary() -> None:
    for keyword, tag, vr in FIELD_TABLE:
        assert pydicom.datadict.tag_for_keyword(keyword) == tag, keyword
        assert pydicom.datadict.dictionary_VR(tag) == vr, keyword


def test_reads_patient_study_series_fields(tmp_path: Path) -> None:
    f = write_dicom(
        tmp_path / "a.dcm",
        PatientName="MÜLLER^HANS",
        charset="ISO_IR 100",
        SeriesNumber=7,
        InstanceNumber=12,
        StudyDate="20240115",
        Modality="CT",
    )
    r = read(f)
    assert r.status == "dicom"
    rec = r.record
    assert rec is not None
    assert rec.PatientName == "MÜLLER^HANS"
    assert rec.SeriesNumber == 7 and rec.InstanceNumber == 12
    assert rec.StudyDate == "20240115" and rec.Modality == "CT"
    assert rec.SeriesInstanceUID == "1.2.3.4.1"
    assert rec.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert rec.ReferringPhysicianName == "DR^NAIDOO"


@pytest.mark.parametrize("implicit", [False, True])
def test_implicit_and_explicit_vr(tmp_path: Path, implicit: bool) -> None:
    f = write_dicom(tmp_path / "a.dcm", implicit=implicit, PatientName="Иванов^Иван", charset="ISO_IR 144")
    r = read(f)
    assert r.status == "dicom" and r.record is not None
    assert r.record.PatientName == "Иванов^Иван"


def test_raw_dataset_without_preamble_or_meta(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "IMG0001", preamble=False, PatientName="BOTHA^ANNA")
    assert f.read_bytes()[:2] == b"\x08\x00"  # starts straight with group 0008
    r = read(f)
    assert r.status == "dicom" and r.record is not None
    assert r.record.PatientName == "BOTHA^ANNA"
    assert r.record.TransferSyntaxUID is None


def test_large_private_element_before_patient_module_is_skipped_not_read(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "big.dcm", private_blob=3 * 1024 * 1024, PatientName="NKOSI^SIPHO")
    assert f.stat().st_size > 3 * 1024 * 1024
    counter = CountingReader()
    r = read_header(str(f), counter.open, f.stat().st_size, f.name)
    assert r.status == "dicom" and r.record is not None
    assert r.record.PatientName == "NKOSI^SIPHO"
    assert counter.bytes_read < 128 * 1024, "the 3 MiB blob must be skipped with a seek, not read"


def test_pixel_data_is_never_read(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "px.dcm", rows=512)  # 512 KiB of pixel data
    counter = CountingReader()
    r = read_header(str(f), counter.open, f.stat().st_size, f.name)
    assert r.status == "dicom"
    assert counter.bytes_read <= 32 * 1024


def test_undefined_length_sequence_before_patient_module(tmp_path: Path) -> None:
    ds = make_dataset(PatientName="DLAMINI^THANDO")
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.999"
    inner = Dataset()
    inner.CodeValue = "T-D3000"
    item.ConceptNameCodeSequence = Sequence([inner])
    item.is_undefined_length_sequence_item = True
    item["ConceptNameCodeSequence"].is_undefined_length = True
    ds.ReferencedImageSequence = Sequence([item, item])
    ds["ReferencedImageSequence"].is_undefined_length = True
    f = write_dicom(tmp_path / "seq.dcm", ds)
    raw = f.read_bytes()
    assert b"\xff\xff\xff\xff" in raw  # pydicom writes undefined-length sequences
    fast, slow = read(f, fast=True), read(f, fast=False)
    assert fast.status == "dicom" and fast.record is not None
    assert fast.record.PatientName == "DLAMINI^THANDO"
    assert fast == slow


def test_missing_series_uid_keeps_file_with_fallback_key(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "s" / "a.dcm", SeriesInstanceUID=None, SeriesNumber=3)
    r = read(f)
    assert r.status == "dicom" and r.record is not None
    assert r.record.SeriesInstanceUID is None
    import hashlib

    assert r.record.series_key("x") == hashlib.sha1(b"1.2.3.4|3").hexdigest()


def test_series_key_rules() -> None:
    import hashlib

    assert series_key("1.2.3", "9", 1, "/d") == hashlib.sha1(b"1.2.3").hexdigest()
    assert series_key(None, "9.8", 4, "/d") == hashlib.sha1(b"9.8|4").hexdigest()
    assert series_key(None, "9.8", None, "/d/e") == hashlib.sha1(b"dir|/d/e").hexdigest()
    assert (
        series_key(None, None, None, r"Z:\Image Archiving\x")
        == hashlib.sha1("dir|Z:\\Image Archiving\\x".encode()).hexdigest()
    )


@pytest.mark.parametrize(
    "content, name, status",
    [
        (b"", "empty.dcm", "error"),
        (b"", "notes.txt", "non_dicom"),
        (b"\x00\x01garbage" * 10, "Thumbs.db", "non_dicom"),
        (b"[.ShellClassInfo]\r\nIconResource=foo\r\n", "desktop.ini", "non_dicom"),
        (b"\x00" * 128 + b"DICM" + bytes(range(256)) * 4, "garbage.dcm", "error"),
        (b"\x00" * 128 + b"DICM", "magic-only.dcm", "error"),
        (b"%PDF-1.4 report", "report.pdf", "non_dicom"),
    ],
)
def test_bad_and_foreign_files_are_classified(tmp_path: Path, content: bytes, name: str, status: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    r = read(f)
    assert r.status == status
    assert r.reason
    assert r.record is None


def test_truncated_header_is_an_error_with_reason(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "full.dcm")
    data = f.read_bytes()
    header_end = data.index(b"\x20\x00\x13\x00")  # InstanceNumber, the last element we read
    for cut in (140, 200, 300, 400, header_end - 3, header_end + 9):
        t = tmp_path / f"cut{cut}.dcm"
        t.write_bytes(data[:cut])
        r = read(t)
        assert r.status == "error", cut
        assert "truncated" in (r.reason or "") or "no SOP" in (r.reason or ""), r.reason
        assert read(t, fast=False).status == "error"


def test_vanished_file(tmp_path: Path) -> None:
    r = read_header(str(tmp_path / "gone.dcm"), LocalReader().open, 100, "gone.dcm")
    assert r.status == "error"
    assert "vanished" in (r.reason or "")


def test_dicomdir_is_not_an_image(tmp_path: Path) -> None:
    src = PYDICOM_DATA / "test_files" / "dicomdirtests" / "DICOMDIR"
    r = read_header(str(src), LocalReader().open, src.stat().st_size, "DICOMDIR")
    assert r.status == "non_dicom"
    assert "DICOMDIR" in (r.reason or "")


def test_sniff() -> None:
    assert sniff(b"\x00" * 128 + b"DICM") == "part10"
    assert sniff(b"\x08\x00\x05\x00CS\x0a\x00") == "raw"
    assert sniff(b"\x08\x00\x16\x00\x1a\x00\x00\x00") == "raw"
    assert sniff(b"MZ\x90\x00\x03\x00\x00\x00") == "none"
    assert sniff(b"abc") == "none"


def _pydicom_files() -> list[Path]:
    files = sorted((PYDICOM_DATA / "test_files").glob("*.dcm")) + sorted(
        (PYDICOM_DATA / "charset_files").glob("*.dcm")
    )
    return [f for f in files if f.stat().st_size > 0]


@pytest.mark.parametrize("path", _pydicom_files(), ids=lambda p: p.name)
def test_fast_path_agrees_with_pydicom(path: Path) -> None:
    fast, slow = read(path, fast=True), read(path, fast=False)
    assert fast.status == slow.status, (fast.reason, slow.reason)
    assert fast.record == slow.record


@pytest.mark.parametrize(
    "name, expected",
    [
        ("chrGerm.dcm", "Äneas^Rüdiger"),
        ("chrRuss.dcm", "Люкceмбypг"),
        ("chrGreek.dcm", "Διονυσιος"),
        ("chrH31.dcm", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        ("chrX1.dcm", "Wang^XiaoDong=王^小東"),
    ],
)
def test_character_sets_are_decoded(name: str, expected: str) -> None:
    r = read(PYDICOM_DATA / "charset_files" / name)
    assert r.status == "dicom" and r.record is not None
    assert r.record.PatientName == expected


def test_insurance_and_other_ids_from_sequences(tmp_path: Path) -> None:
    ds = make_dataset(PatientName="NAIDOO^PRIYA", OtherPatientIDs="DHMS-1234")
    ds.InsurancePlanIdentification = "Discovery Health"
    plan = Dataset()
    plan.CodeValue = "GEMS"
    plan.CodeMeaning = "Government Employees Medical Scheme"
    ds.PatientInsurancePlanCodeSequence = Sequence([plan])
    other = Dataset()
    other.PatientID = "8001015009087"
    other.IssuerOfPatientID = "ZA-DHA"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.InstitutionAddress = "14 Guild Rd, Parktown West, Johannesburg"
    ds.PatientComments = "Bonitas member"
    f = write_dicom(tmp_path / "ins.dcm", ds)
    rec = read(f).record
    assert rec is not None
    assert rec.OtherPatientIDs == "DHMS-1234\\8001015009087"
    assert rec.InsurancePlanIdentification == "Discovery Health\\Government Employees Medical Scheme"
    assert rec.InstitutionAddress == "14 Guild Rd, Parktown West, Johannesburg"
    assert rec.PatientComments == "Bonitas member"
    assert read(f) == read(f, fast=False)
