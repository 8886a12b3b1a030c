"""Search: any letter case, any alphabet, words in any order, filters, and bad input refused clearly."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import write_dicom
from pacsindex.errors import InvalidQuery
from pacsindex.index import store
from pacsindex.index.search import Plan, _choose_plan, search
from pacsindex.index.textfold import fold, search_text
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree

PEOPLE = [
    # name, charset, PatientID, accession, study desc, series desc, modality, date
    ("MÜLLER^HANS", "ISO_IR 100", "PID-M", "ACC100", "MR KNEE", "T1 SAG", "MR", "20240115"),
    ("Иванов^Иван", "ISO_IR 144", "PID-I", "ACC200", "CT CHEST", "AXIAL 1MM", "CT", "20230301"),
    ("Παπαδόπουλος^Νίκος", "ISO_IR 126", "PID-P", "ACC300", "CHEST PA", "PA", "CR", "20221010"),
    (
        "VAN DER MERWE^PIETER",
        "ISO_IR 192",
        "8001015009087",
        "ACC400",
        "ABDOMEN US",
        "LIVER",
        "US",
        "20240601",
    ),
    ("O'BRIEN^SEÁN", "ISO_IR 100", "PID-O", "ACC500", "CT HEAD 100% DOSE", "BRAIN_STD", "CT", "20200101"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s") / "archive"
    for i, (name, cs, pid, acc, sd, ser, mod, date) in enumerate(PEOPLE):
        write_dicom(
            root / f"p{i}" / "IM1.dcm",
            PatientName=name,
            charset=cs,
            PatientID=pid,
            AccessionNumber=acc,
            StudyDescription=sd,
            SeriesDescription=ser,
            Modality=mod,
            StudyDate=date,
            StudyInstanceUID=f"1.9.{i}",
            SeriesInstanceUID=f"1.9.{i}.1",
        )
    path = root.parent / "i.db"
    run_index(path, [LocalTree(str(root))], ScanOptions(workers=1))
    return path


def names(db: Path, q: str, **kw) -> list[str]:
    with store.reading(db) as conn:
        return [r["PatientName"] for r in search(conn, q, **kw)]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("müller", "MÜLLER^HANS"),
        ("MÜLLER", "MÜLLER^HANS"),
        ("muller", "MÜLLER^HANS"),  # without the umlaut too
        ("hans müller", "MÜLLER^HANS"),  # any order
        ("MÜLLER^HANS", "MÜLLER^HANS"),  # DICOM's ^ is a word break
        ("иванов", "Иванов^Иван"),
        ("ИВАН", "Иванов^Иван"),
        ("παπαδόπουλος", "Παπαδόπουλος^Νίκος"),
        ("ΠΑΠΑΔΌΠΟΥΛΟΣ", "Παπαδόπουλος^Νίκος"),  # final sigma folds too
        ("papa", None),  # Latin letters do not match a Greek name
        ("van der merwe", "VAN DER MERWE^PIETER"),
        ("8001015009087", "VAN DER MERWE^PIETER"),  # PatientID
        ("acc300", "Παπαδόπουλος^Νίκος"),  # accession
        ("knee", "MÜLLER^HANS"),  # study description
        ("axial", "Иванов^Иван"),  # series description
        ("seán", "O'BRIEN^SEÁN"),
        ("o'brien", "O'BRIEN^SEÁN"),
        ("100% dose", "O'BRIEN^SEÁN"),  # SQL wildcards are plain characters (and punctuation a break)
        ("brain_std", "O'BRIEN^SEÁN"),
        ("pa chest", "Παπαδόπουλος^Νίκος"),  # a two-letter word too
        ("ller", "MÜLLER^HANS"),  # part of a word
    ],
)
def test_matching(db: Path, query: str, expected: str | None) -> None:
    found = names(db, query)
    assert found == ([] if expected is None else [expected])


def test_no_match_is_empty(db: Path) -> None:
    assert names(db, "zzzz") == []
    assert names(db, "müller knee zzz") == []  # every word must match


def test_empty_query_lists_all_newest_first(db: Path) -> None:
    with store.reading(db) as conn:
        dates = [r["StudyDate"] for r in search(conn, "")]
    assert dates == sorted(dates, reverse=True) and len(dates) == 5


def test_filters(db: Path) -> None:
    assert names(db, "", modality="ct") == ["Иванов^Иван", "O'BRIEN^SEÁN"]
    assert names(db, "", date_from="2024-01-01") == ["VAN DER MERWE^PIETER", "MÜLLER^HANS"]
    assert names(db, "", date_from="20230101", date_to="2023-12-31") == ["Иванов^Иван"]
    assert names(db, "chest", modality="CR") == ["Παπαδόπουλος^Νίκος"]


def test_results_carry_demographics_study_series_and_count(db: Path) -> None:
    with store.reading(db) as conn:
        (row,) = search(conn, "müller")
    assert set(store.SERIES_COLUMNS) <= set(row)
    assert row["PatientID"] == "PID-M" and row["StudyDate"] == "20240115" and row["file_count"] == 1
    assert row["Modality"] == "MR" and row["SeriesDescription"] == "T1 SAG"


def test_paging(db: Path) -> None:
    every = names(db, "", limit=5)
    assert (
        names(db, "", limit=2) + names(db, "", limit=2, offset=2) + names(db, "", limit=2, offset=4) == every
    )


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"date_from": "2024-13-01"}, "not a real date"),
        ({"date_from": "yesterday"}, "YYYY-MM-DD"),
        ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 100000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"modality": "CT' OR 1=1 --"}, "modality"),
    ],
)
def test_bad_input_is_refused_clearly(db: Path, kw: dict, message: str) -> None:
    with store.reading(db) as conn, pytest.raises(InvalidQuery, match=message):
        search(conn, "", **kw)


def test_injection_attempts_are_just_text(db: Path) -> None:
    assert names(db, "'; DROP TABLE series; --") == []
    assert len(names(db, "")) == 5


def test_fold_and_search_text() -> None:
    assert fold("MÜLLER^HANS") == "müller hans"
    assert fold("ΟΔΥΣΣΕΥΣ") == fold("οδυσσευς") == fold("οδυσσευσ")
    assert "muller" in search_text("MÜLLER^HANS")
    assert search_text(None, "", "ABC") == " abc "


@pytest.fixture(scope="module")
def sa_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """South African patients: ID numbers, medical schemes and hospitals written the way front desks do."""
    root = tmp_path_factory.mktemp("sa") / "archive"
    people = [
        # name, PatientID, birth, sex, insurance, institution, station
        (
            "NKOSI^SIPHO",
            "800101 5009 087",
            "19800101",
            "M",
            "DISCOVERY HEALTH MED SCHEME",
            "NETCARE MILPARK HOSP",
            "CT1",
        ),
        (
            "BOTHA^ANNA",
            "8001015009087",
            "19800102",
            "F",
            "Govt Employees Medical Scheme",
            "CHRIS HANI BARAGWANATH",
            "XR2",
        ),
        ("SMITH^JOHN", "PID-1", "19700101", "M", "", "Life Fourways", "US1"),
    ]
    for i, (name, pid, birth, sex, ins, inst, station) in enumerate(people):
        extra = {"InsurancePlanIdentification": ins} if ins else {}
        write_dicom(
            root / f"p{i}" / "IM1.dcm",
            PatientName=name,
            PatientID=pid,
            PatientBirthDate=birth,
            PatientSex=sex,
            InstitutionName=inst,
            StationName=station,
            StudyInstanceUID=f"2.9.{i}",
            SeriesInstanceUID=f"2.9.{i}.1",
            **extra,
        )
    path = root.parent / "i.db"
    run_index(path, [LocalTree(str(root))], ScanOptions(workers=1))
    return path


def test_sa_id_found_with_or_without_spaces(sa_db: Path) -> None:
    assert sorted(names(sa_db, "8001015009087")) == ["BOTHA^ANNA", "NKOSI^SIPHO"]
    assert sorted(names(sa_db, "800101 5009 087")) == ["BOTHA^ANNA", "NKOSI^SIPHO"]


def test_sa_id_quality_flags_and_scheme_and_hospital_in_results(sa_db: Path) -> None:
    with store.reading(sa_db) as conn:
        rows = {r["PatientName"]: r for r in search(conn, "", limit=10)}
    nkosi, botha, smith = rows["NKOSI^SIPHO"], rows["BOTHA^ANNA"], rows["SMITH^JOHN"]
    assert nkosi["sa_id"] == "8001015009087" and nkosi["sa_id_issues"] is None
    assert "birth date" in botha["sa_id_issues"] and "sex" in botha["sa_id_issues"]
    assert smith["sa_id"] is None and smith["sa_id_issues"] is None
    assert nkosi["medical_aid"].startswith("Discovery") and "Government" in botha["medical_aid"]
    assert smith["medical_aid"] is None
    assert "Milpark" in nkosi["hospital"] and nkosi["hospital_group"] == "Netcare"
    assert "Baragwanath" in botha["hospital"]
    assert smith["hospital_group"].startswith("Life")


def test_filter_by_scheme_and_hospital(sa_db: Path) -> None:
    with store.reading(sa_db) as conn:
        aid = search(conn, "", limit=10)[0]["medical_aid"]
    assert len(names(sa_db, "", medical_aid=aid)) == 1
    assert names(sa_db, "", hospital_group="netcare") == ["NKOSI^SIPHO"]
    assert names(sa_db, "", medical_aid="No Such Scheme") == []


@pytest.fixture(scope="module")
def plans_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated archive (240 series; "pid" is in nearly every one, "chest" in a twelfth) plus series that
    tie on the page order: one study with two series numbered alike, one with no series number, two studies
    on one day, and a study with no date."""
    root = tmp_path_factory.mktemp("plans") / "archive"
    write_sample(root / "sample", patients=60, files=900)
    ties = [
        # study, series, SeriesNumber, StudyDate
        ("3.1", "3.1.1", 1, "20990101"),
        ("3.1", "3.1.2", 1, "20990101"),
        ("3.1", "3.1.3", None, "20990101"),
        ("3.2", "3.2.1", 1, "20990101"),
        ("3.3", "3.3.1", 2, ""),
        ("3.3", "3.3.2", 1, ""),
    ]
    for i, (study, series, number, day) in enumerate(ties):
        write_dicom(
            root / "ties" / f"IM{i}.dcm",
            PatientName="TIE^CHEST",
            PatientID="PID-TIE",
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            SeriesNumber=number,
            StudyDate=day,
        )
    path = root.parent / "i.db"
    run_index(path, [LocalTree(str(root))], ScanOptions(workers=1))
    return path


def keys(conn: sqlite3.Connection, q: str, plan: Plan, **kw: Any) -> list[str]:
    return [r["SeriesKey"] for r in search(conn, q, plan=plan, **kw)]


@pytest.mark.parametrize(
    "query",
    [
        "pid",  # nearly every series: the walk stops after a page
        "chest",  # common
        "dlamini",  # rare
        "zzzz",  # nothing
        "pid chest",  # a very common and a common word
        "pa chest",  # with a word too short for the trigram index
        "pid ct",
        "tie chest",  # the series that tie on the date
        "",
    ],
)
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"limit": 7},
        {"limit": 7, "offset": 7},
        {"limit": 5, "offset": 231},  # the last page of "pid"
        {"limit": 3, "offset": 1000},  # past the end
        {"modality": "CT"},
        {"modality": "US", "limit": 4, "offset": 2},
        {"date_from": "2018-01-01", "date_to": "2020-12-31", "limit": 9},
        {"date_from": "2021-06-01"},
        {"hospital_group": "netcare", "limit": 6},
        {"hospital": "Netcare Milpark Hospital", "limit": 6},
        {"medical_aid": "Government Employees Medical Scheme"},
    ],
)
def test_walk_and_auto_plans_find_what_sorting_finds(plans_db: Path, query: str, kw: dict[str, Any]) -> None:
    with store.reading(plans_db) as conn:
        sorted_keys = keys(conn, query, "sorted", **kw)
        assert keys(conn, query, "walk", **kw) == sorted_keys
        assert keys(conn, query, "auto", **kw) == sorted_keys


def test_pages_of_a_common_word_join_up_in_order(plans_db: Path) -> None:
    with store.reading(plans_db) as conn:
        every = search(conn, "pid", plan="sorted", limit=1000)
        pages = [keys(conn, "pid", "auto", limit=25, offset=o) for o in range(0, len(every) + 25, 25)]
        walked = [keys(conn, "pid", "walk", limit=25, offset=o) for o in range(0, len(every) + 25, 25)]
    assert len(every) > 200
    assert sum(pages, []) == sum(walked, []) == [r["SeriesKey"] for r in every]
    dates = [r["StudyDate"] or "" for r in every]
    assert dates == sorted(dates, reverse=True)
    ties = [(r["StudyInstanceUID"], r["SeriesNumber"]) for r in every if r["PatientID"] == "PID-TIE"]
    assert ties[-2:] == [("3.3", 1), ("3.3", 2)]  # no study date: last, then by series number


def test_common_words_walk_and_rare_words_sort(plans_db: Path) -> None:
    """The plan a search takes on its own: common words walk, rare ones sort the matches the probe found."""
    with store.reading(plans_db) as conn:
        assert _choose_plan(conn, '"pid"', [], 100) == ("walk", None)
        plan, hits = _choose_plan(conn, '"dlamini"', [], 100)
        assert plan == "sorted" and hits is not None and 0 < len(hits) < 5
        assert _choose_plan(conn, '"pid"', [("s.Modality = ?", ("NM",), False)], 100) == ("sorted", None)
        assert _choose_plan(conn, '"pid"', [("s.Modality = ?", ("CT",), False)], 100) == ("walk", None)
