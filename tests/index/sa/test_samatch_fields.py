"""Medical aid and hospital recognition without false positives: structured fields win over free text,
everyday words are not aliases on their own in free text, the issuer of an OtherPatientIDsSequence item
names the scheme, the newer schemes are known, and an SA ID number off by its check digit is flagged."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import make_dataset, write_dicom
from pacsindex.dicom import HeaderRecord
from pacsindex.index import store
from pacsindex.index.sa.enrich import Enricher
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree

GEMS = "Government Employees Medical Scheme"


def aid(**fields: str) -> str | None:
    return Enricher().patient(HeaderRecord(**fields)).medical_aid  # type: ignore[arg-type]


def hospital(**fields: str) -> str | None:
    found = Enricher().study(HeaderRecord(**fields))  # type: ignore[arg-type]
    return found.hospital or found.hospital_group


def test_a_structured_field_wins_over_free_text() -> None:
    assert aid(InsurancePlanIdentification="GEMS", PatientComments="Self-medicating") == GEMS
    assert aid(PatientComments="Self-medicating, no allergies") is None  # "selfmed" runs on: no word
    assert aid(PatientComments="member of Selfmed") == "Selfmed Medical Scheme"


@pytest.mark.parametrize(
    "comments", ["Incidental discovery of a nodule", "Key health concerns: asthma", "Momentum of recovery"]
)
def test_everyday_words_in_free_text_are_no_scheme(comments: str) -> None:
    assert aid(PatientComments=comments) is None


def test_everyday_word_aliases_still_count_in_structured_fields() -> None:
    assert aid(InsurancePlanIdentification="Discovery") == "Discovery Health Medical Scheme"
    assert aid(InsurancePlanIdentification="Key Health") == "KeyHealth Medical Scheme"


@pytest.mark.parametrize(
    "address", ["12 Tygerberg Valley Road, Bellville", "Life Support Imaging Centre, 3 Main Rd, Benoni"]
)
def test_addresses_on_roads_and_everyday_words_are_no_hospital(address: str) -> None:
    assert hospital(InstitutionName="Valley Radiology", InstitutionAddress=address) is None


def test_the_institution_still_names_the_hospital() -> None:
    assert hospital(InstitutionName="Tygerberg Hospital", InstitutionAddress="Francie van Zijl Dr") == (
        "Tygerberg Hospital"
    )
    assert hospital(InstitutionName="LIFE", InstitutionAddress="Life Fourways, Cedar Rd") == (
        "Life Fourways Hospital"
    )  # free text may name the facility of the group the structured field names


@pytest.mark.parametrize(
    "text, scheme",
    [
        ("CAMAF", "Chartered Accountants (SA) Medical Aid Fund"),
        ("Transmed Link", "Transmed Medical Fund"),
        ("MEDIPOS", "Medipos Medical Scheme"),
        ("Suremed Navigator", "Suremed Health"),
    ],
)
def test_the_newer_schemes_are_known(text: str, scheme: str) -> None:
    assert aid(InsurancePlanIdentification=text) == scheme


def test_a_scheme_named_as_the_issuer_of_other_patient_ids(tmp_path: Path) -> None:
    item = Dataset()
    item.PatientID = "1234567"
    item.IssuerOfPatientID = "BONITAS"
    item.TypeOfPatientID = "TEXT"
    ds = make_dataset(PatientName="ISSUER^SHOWN", PatientComments="Discovery of a fracture")
    ds.OtherPatientIDsSequence = Sequence([item])
    write_dicom(tmp_path / "archive" / "IM1.dcm", ds)
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(tmp_path / "archive"))], ScanOptions(workers=1))
    with store.reading(db) as conn:
        (row,) = store.list_series(conn)
        detail = store.get_series(conn, row["SeriesKey"])
    assert detail is not None and detail["medical_aid"] == "Bonitas Medical Fund"
    assert "1234567" in (detail["OtherPatientIDs"] or "")


def test_an_id_number_off_by_its_check_digit_is_a_probable_typo() -> None:
    extras = Enricher().patient(HeaderRecord(PatientID="800101 5009 088"))
    assert extras.sa_id is None
    assert extras.sa_id_issues == "SA ID number 8001015009088 fails its check digit: probable typo"
    assert Enricher().patient(HeaderRecord(PatientID="8001015009087")).sa_id_issues is None
    assert Enricher().patient(HeaderRecord(PatientID="H0001 5555")).sa_id_issues is None  # not an ID at all
