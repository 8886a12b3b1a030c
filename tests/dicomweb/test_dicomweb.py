"""DICOMweb over a real index (domain level): QIDO-RS matching as a PACS or viewer would ask, the DICOM JSON
model of the answers, bad parameters refused with a reason, series without UIDs left out, and WADO-RS
bodies that hold the files' exact bytes."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from conftest import write_dicom
from pacsindex.dicomweb import query as dicomweb
from pacsindex.dicomweb.retrieve import (
    Multipart,
    check_json_accept,
    find,
    metadata,
    open_single,
    retrieve_type,
)
from pacsindex.errors import InvalidQuery, NotAcceptable, NotFound
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from pacsindex.sources.readers import Readers
from support_dicomweb import parse_multipart

BASE = "https://pacs.example.co.za/dicom-web"
PATIENT_NAME, PATIENT_ID, STUDY_DATE = "00100010", "00100020", "00080020"
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
MODALITIES, N_SERIES, N_INSTANCES = "00080061", "00201206", "00201208"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dw") / "archive"
    people = [
        # name, charset, PatientID, accession, date, study uid, [(series uid, modality, files)]
        (
            "MÜLLER^HANS",
            "ISO_IR 100",
            "PID-M",
            "ACC1",
            "20240115",
            "1.5.1",
            [("1.5.1.1", "CT", 3), ("1.5.1.2", "SR", 1)],
        ),
        ("MULLER^ANNA", "ISO_IR 100", "PID-A", "ACC2", "20230601", "1.5.2", [("1.5.2.1", "MR", 2)]),
        ("Иванов^Иван", "ISO_IR 144", "PID-I", "ACC3", "20220301", "1.5.3", [("1.5.3.1", "CR", 1)]),
        ("O'BRIEN^SEÁN", "ISO_IR 100", "PID-O", "ACC4", "20200101", "1.5.4", [("1.5.4.1", "US", 2)]),
    ]
    for name, cs, pid, acc, day, study, series in people:
        for number, (uid, modality, count) in enumerate(series, start=1):
            for i in range(count):
                write_dicom(
                    root / pid / uid / f"IM{i}.dcm",
                    PatientName=name,
                    charset=cs,
                    PatientID=pid,
                    AccessionNumber=acc,
                    StudyDate=day,
                    StudyInstanceUID=study,
                    SeriesInstanceUID=uid,
                    SeriesNumber=number,
                    Modality=modality,
                    InstanceNumber=i + 1,
                )
    # A series the index can only group by study + number (no SeriesInstanceUID): not in DICOMweb.
    write_dicom(
        root / "PID-M" / "noseries" / "IM0.dcm",
        PatientName="MÜLLER^HANS",
        PatientID="PID-M",
        StudyInstanceUID="1.5.1",
        SeriesInstanceUID=None,
        SeriesNumber=9,
        Modality="OT",
        StudyDate="20240115",
    )
    db = root.parent / "i.db"
    run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    return root, db


@pytest.fixture
def conn(archive: tuple[Path, Path]) -> Iterator[sqlite3.Connection]:
    with store.reading(archive[1]) as c:
        yield c


def studies(conn: sqlite3.Connection, level: str = "study", **params: str) -> list[dict]:
    query = dicomweb.parse_query(level, list(params.items()))
    return dicomweb.search(conn, query, BASE).items


def value(item: dict, tag: str) -> object:
    return item[tag].get("Value", [None])[0]


def uids(items: list[dict], tag: str = STUDY_UID) -> set[str]:
    return {str(value(i, tag)) for i in items}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"PatientName": "müller*"}, {"1.5.1", "1.5.2"}),  # accents optional both ways
        ({"PatientName": "MULLER*"}, {"1.5.1", "1.5.2"}),  # accents optional, any case
        ({"PatientName": "mul?er^anna"}, {"1.5.2"}),
        ({"PatientName": "Muller^Hans"}, {"1.5.1"}),  # whole name, no wildcard
        ({"PatientName": "muller"}, set()),  # without a wildcard the whole name must match
        ({"PatientName": "*ИВАН*"}, {"1.5.3"}),
        ({"PatientName": "o'brien*"}, {"1.5.4"}),
        ({"PatientID": "PID-A"}, {"1.5.2"}),
        ({"PatientID": "PID-*"}, {"1.5.1", "1.5.2", "1.5.3", "1.5.4"}),
        ({"00100020": "pid-a"}, set()),  # IDs match case-sensitively, and tags work as keys
        ({"AccessionNumber": "ACC3"}, {"1.5.3"}),
        ({"StudyDate": "20230601"}, {"1.5.2"}),
        ({"StudyDate": "20220101-20231231"}, {"1.5.2", "1.5.3"}),
        ({"StudyDate": "20230101-"}, {"1.5.1", "1.5.2"}),
        ({"StudyDate": "-20220301"}, {"1.5.3", "1.5.4"}),
        ({"ModalitiesInStudy": "SR"}, {"1.5.1"}),  # any series of the study
        ({"ModalitiesInStudy": "MR,US"}, {"1.5.2", "1.5.4"}),
        ({"Modality": "ct"}, {"1.5.1"}),
        ({"StudyInstanceUID": "1.5.2\\1.5.4"}, {"1.5.2", "1.5.4"}),
        ({"PatientName": "MULLER*", "ModalitiesInStudy": "MR"}, {"1.5.2"}),
        ({"PatientName": "*", "PatientID": ""}, {"1.5.1", "1.5.2", "1.5.3", "1.5.4"}),
    ],
)
def test_study_matching(conn: sqlite3.Connection, params: dict[str, str], expected: set[str]) -> None:
    assert uids(studies(conn, **params)) == expected


def test_study_answers_carry_the_standard_attributes_in_dicom_json(conn: sqlite3.Connection) -> None:
    [study] = studies(conn, PatientID="PID-M")
    assert list(study) == sorted(study)  # tags in order
    assert study[PATIENT_NAME] == {"vr": "PN", "Value": [{"Alphabetic": "MÜLLER^HANS"}]}
    assert study[PATIENT_ID] == {"vr": "LO", "Value": ["PID-M"]}
    assert study[STUDY_DATE] == {"vr": "DA", "Value": ["20240115"]}
    assert study["00080030"] == {"vr": "TM", "Value": ["101500"]}
    assert study["00080050"]["Value"] == ["ACC1"]
    assert study["00100030"]["Value"] == ["19800101"] and study["00100040"]["Value"] == ["F"]
    assert study["00081030"]["Value"] == ["CT CHEST"]
    # Only the two series with a SeriesInstanceUID count; the one grouped by number is left out.
    assert study[MODALITIES] == {"vr": "CS", "Value": ["CT", "SR"]}
    assert study[N_SERIES] == {"vr": "IS", "Value": [2]}
    assert study[N_INSTANCES] == {"vr": "IS", "Value": [4]}
    assert study["00081190"] == {"vr": "UR", "Value": [f"{BASE}/studies/1.5.1"]}
    assert study["00080005"]["Value"] == ["ISO_IR 192"]
    assert "00080080" not in study  # InstitutionName only when asked for
    [asked] = studies(conn, PatientID="PID-M", includefield="InstitutionName,00100021")
    assert asked["00080080"]["Value"] == ["Netcare Milpark Hospital"]
    assert asked["00100021"] == {"vr": "LO"}  # asked for, empty: the VR only
    [everything] = studies(conn, PatientID="PID-M", includefield="all")
    assert {"00080080", "00101000"} <= set(everything)


def test_series_and_instances(conn: sqlite3.Connection) -> None:
    query = dicomweb.parse_query("series", [], study_uid="1.5.1")
    series = dicomweb.search(conn, query, BASE).items
    assert uids(series, SERIES_UID) == {"1.5.1.1", "1.5.1.2"}  # not the series without a UID
    ct = next(s for s in series if value(s, SERIES_UID) == "1.5.1.1")
    assert ct["00080060"]["Value"] == ["CT"] and ct["00200011"]["Value"] == [1]
    assert ct["0008103E"]["Value"] == ["AXIAL"] and ct["00201209"]["Value"] == [3]
    assert ct["00081190"]["Value"] == [f"{BASE}/studies/1.5.1/series/1.5.1.1"]
    assert ct[PATIENT_NAME]["Value"] == [{"Alphabetic": "MÜLLER^HANS"}]  # the study's attributes too

    every = dicomweb.search(conn, dicomweb.parse_query("series", [("Modality", "MR")]), BASE).items
    assert uids(every, SERIES_UID) == {"1.5.2.1"}
    by_name = dicomweb.parse_query("series", [("PatientName", "ivanov*")])
    assert uids(dicomweb.search(conn, by_name, BASE).items, SERIES_UID) == set()  # Cyrillic only

    query = dicomweb.parse_query("instance", [], study_uid="1.5.1", series_uid="1.5.1.1")
    instances = dicomweb.search(conn, query, BASE).items
    assert [value(i, "00200013") for i in instances] == [1, 2, 3]
    first = instances[0]
    assert first["00080016"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"]  # CT Image Storage
    sop = value(first, SOP_UID)
    assert first["00081190"]["Value"] == [f"{BASE}/studies/1.5.1/series/1.5.1.1/instances/{sop}"]
    one = dicomweb.parse_query("instance", [("InstanceNumber", "2")], study_uid="1.5.1")
    assert [value(i, "00200013") for i in dicomweb.search(conn, one, BASE).items] == [2]


def test_limit_offset_and_more(conn: sqlite3.Connection) -> None:
    everyone = [value(s, STUDY_UID) for s in studies(conn)]
    assert everyone == ["1.5.1", "1.5.2", "1.5.3", "1.5.4"]  # newest first
    page = dicomweb.search(conn, dicomweb.parse_query("study", [("limit", "2"), ("offset", "1")]), BASE)
    assert [value(s, STUDY_UID) for s in page.items] == ["1.5.2", "1.5.3"]
    assert page.more and "offset=3" in page.warnings[0]
    capped = dicomweb.parse_query("study", [("limit", "50000")])
    assert capped.limit == dicomweb.MAX_LIMIT and "limit" in capped.warnings[0]
    ignored = dicomweb.parse_query("study", [("fuzzymatching", "true"), ("PatientAge", "040Y")])
    assert any("PatientAge" in w for w in ignored.warnings)


@pytest.mark.parametrize(
    "params, reason",
    [
        ([("StudyDate", "2024-01-15")], "YYYYMMDD"),
        ([("StudyDate", "20240230")], "not a real date"),
        ([("StudyDate", "20240101-20230101")], "ends before it starts"),
        ([("limit", "ten")], "whole number"),
        ([("limit", "0")], "limit"),
        ([("offset", "-1")], "offset"),
        ([("NoSuchThing", "1")], "not a DICOM attribute"),
        ([("includefield", "Bogus")], "includefield"),
        ([("PatientID", "a"), ("PatientID", "b")], "more than once"),
        ([("ModalitiesInStudy", "C;T")], "modality codes"),
        ([("SeriesNumber", "one")], "whole number"),
        ([("PatientName", "x" * 300)], "too long"),
    ],
)
def test_bad_parameters_say_why(params: list[tuple[str, str]], reason: str) -> None:
    level = "series" if params[0][0] == "SeriesNumber" else "study"
    with pytest.raises(InvalidQuery, match=reason):
        dicomweb.parse_query(level, params)


def test_unknown_scope_is_not_found(conn: sqlite3.Connection) -> None:
    with pytest.raises(NotFound):
        dicomweb.search(conn, dicomweb.parse_query("series", [], study_uid="9.9.9"), BASE)
    with pytest.raises(NotFound):
        dicomweb.search(
            conn, dicomweb.parse_query("instance", [], study_uid="1.5.1", series_uid="1.5.2.1"), BASE
        )
    for args in (("9.9",), ("1.5.1", "9.9"), ("1.5.1", "1.5.1.1", "9.9")):
        with pytest.raises(NotFound):
            find(conn, *args)


def test_series_and_study_bodies_hold_the_files_bytes(
    conn: sqlite3.Connection, archive: tuple[Path, Path]
) -> None:
    root = archive[0]
    target = find(conn, "1.5.1", "1.5.1.1")
    multipart = Multipart(target.files, Readers(), chunk=1000)  # small pieces: files span several
    parts = parse_multipart(b"".join(multipart), multipart.content_type)
    expected = [(root / "PID-M" / "1.5.1.1" / f"IM{i}.dcm").read_bytes() for i in range(3)]
    assert parts == expected and multipart.sent == 3 and multipart.skipped == 0

    study = find(conn, "1.5.1")
    assert len(study.files) == 4 and study.PatientID == "PID-M"
    one = find(conn, "1.5.1", "1.5.1.1", target.files[1].SOPInstanceUID)
    assert b"".join(open_single(one.files[0], Readers())) == expected[1]


def test_a_file_gone_since_indexing_is_left_out(conn: sqlite3.Connection, tmp_path: Path) -> None:
    target = find(conn, "1.5.4", "1.5.4.1")
    gone = target.files[0]
    moved = tmp_path / "moved.dcm"
    Path(gone.path).rename(moved)
    try:
        multipart = Multipart(target.files, Readers())
        parts = parse_multipart(b"".join(multipart), multipart.content_type)
        assert len(parts) == 1 and multipart.skipped == 1
        with pytest.raises(NotFound):
            open_single(gone, Readers())
        items = json.loads(b"".join(metadata(target.files, Readers())))
        assert len(items) == 1
    finally:
        moved.rename(gone.path)


def test_metadata_is_the_header_without_pixel_data(
    conn: sqlite3.Connection, archive: tuple[Path, Path]
) -> None:
    target = find(conn, "1.5.3")
    [item] = json.loads(b"".join(metadata(target.files, Readers())))
    ds = pydicom.dcmread(io.BytesIO(Path(target.files[0].path).read_bytes()))
    assert item[PATIENT_NAME]["Value"] == [{"Alphabetic": "Иванов^Иван"}]
    assert item[SOP_UID]["Value"] == [ds.SOPInstanceUID]
    assert item["00280010"]["Value"] == [4]  # Rows
    assert "7FE00010" not in item  # no pixel data
    assert item["00083002"]["Value"] == ["1.2.840.10008.1.2.1"]


def test_media_types() -> None:
    assert retrieve_type(None, single=False) == "multipart"
    assert (
        retrieve_type('multipart/related; type="application/dicom"; transfer-syntax=*', single=False)
        == "multipart"
    )
    assert retrieve_type("multipart/related; type=application/dicom", single=True) == "multipart"
    assert retrieve_type("*/*", single=False) == "multipart"
    assert retrieve_type("application/dicom", single=True) == "single"
    for accept, single in (
        ("application/dicom", False),
        ("image/jpeg", True),
        ('multipart/related; type="application/octet-stream"', False),
    ):
        with pytest.raises(NotAcceptable):
            retrieve_type(accept, single=single)
    assert check_json_accept("application/dicom+json") == "application/dicom+json"
    assert check_json_accept("application/json") == "application/json"
    with pytest.raises(NotAcceptable):
        check_json_accept('multipart/related; type="application/dicom+xml"')
