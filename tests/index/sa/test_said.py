"""SA ID numbers: finding them however they were typed, and refusing what only looks like one."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from pacsindex.index.sa.said import SaId, digits_only, parse_sa_id, quality_issues

TODAY = date(2026, 6, 15)


def with_check(twelve: str) -> str:
    """Append the Luhn check digit (computed here independently of the module under test)."""
    digits = [int(c) for c in twelve]
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit will sit right of these, so double i = 0
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return twelve + str((10 - total % 10) % 10)


def test_the_textbook_number_says_born_1980_male_citizen() -> None:
    found = parse_sa_id("8001015009087", today=TODAY)
    assert found == SaId(number="8001015009087", birth_date=date(1980, 1, 1), sex="M", citizen=True)
    assert str(found) == "800101 5009 087"


@pytest.mark.parametrize(
    "typed",
    [
        "800101 5009 087",
        "800101-5009-087",
        "800101 - 5009 - 087",
        "8 0 0 1 0 1 5 0 0 9 0 8 7",
        " 8001015009087 ",
    ],
)
def test_spaces_and_hyphens_inside_are_allowed(typed: str) -> None:
    found = parse_sa_id(typed, today=TODAY)
    assert found is not None and found.number == "8001015009087"


def test_a_wrong_check_digit_is_not_an_id_number() -> None:
    assert parse_sa_id("8001015009088", today=TODAY) is None
    assert parse_sa_id("8001015009080", today=TODAY) is None


@pytest.mark.parametrize(
    "yymmdd",
    ["990229", "000230", "801301", "800132", "800000", "800100", "810229", "800431"],
)
def test_impossible_dates_are_not_id_numbers_even_with_a_valid_check_digit(yymmdd: str) -> None:
    number = with_check(yymmdd + "500908")
    assert parse_sa_id(number, today=TODAY) is None


def test_29_february_2000_is_real() -> None:
    found = parse_sa_id(with_check("000229000108"), today=TODAY)
    assert found is not None and found.birth_date == date(2000, 2, 29)


def test_29_february_00_before_2000_cannot_be_1900_which_was_no_leap_year() -> None:
    assert parse_sa_id(with_check("000229000108"), today=date(1999, 12, 31)) is None


@pytest.mark.parametrize(
    ("yymmdd", "born"),
    [
        ("250101", date(2025, 1, 1)),  # last year, not 1925
        ("270101", date(1927, 1, 1)),  # 2027 is in the future
        ("260615", date(2026, 6, 15)),  # born today
        ("260616", date(1926, 6, 16)),  # tomorrow in 2026 is not possible
        ("000101", date(2000, 1, 1)),
        ("991231", date(1999, 12, 31)),
    ],
)
def test_the_century_is_the_one_not_in_the_future(yymmdd: str, born: date) -> None:
    found = parse_sa_id(with_check(yymmdd + "012308"), today=TODAY)
    assert found is not None and found.birth_date == born


@pytest.mark.parametrize(("ssss", "sex"), [("0000", "F"), ("4999", "F"), ("5000", "M"), ("9999", "M")])
def test_sex_from_digits_7_to_10(ssss: str, sex: str) -> None:
    found = parse_sa_id(with_check("850612" + ssss + "08"), today=TODAY)
    assert found is not None and found.sex == sex


@pytest.mark.parametrize(("digit", "citizen"), [("0", True), ("1", False), ("2", False)])
def test_citizenship_digit(digit: str, citizen: bool) -> None:
    found = parse_sa_id(with_check("8506120123" + digit + "8"), today=TODAY)
    assert found is not None and found.citizen is citizen


def test_an_unknown_citizenship_digit_is_not_an_id_number() -> None:
    assert parse_sa_id(with_check("850612012338"), today=TODAY) is None


@pytest.mark.parametrize(
    "value",
    [
        "MRN0042\\8001015009087\\ACC-77",  # one value of a multi-valued OtherPatientIDs
        "8001015009088\\800101 5009 087",  # the first value fails its check digit, the second is good
        "Hosp no 1234567, ID 800101-5009-087 (mother)",
        "ID:8001015009087",
        "12345 8001015009087",  # hospital number, space, ID number
        "H0042 800101-5009-087 ward 7",
        "2024-01-15 800101 5009 087",
    ],
)
def test_found_among_other_ids(value: str) -> None:
    found = parse_sa_id(value, today=TODAY)
    assert found is not None and found.number == "8001015009087"


@pytest.mark.parametrize(
    "value",
    [
        "800101500908",  # 12 digits
        "80010150090871",  # 14 digits, the first 13 of which are a valid ID number
        "180010150090870",
        "PID-1",
        "",
        "\\\\",
        "800101/5009/087",  # slashes are not how an ID number is written
    ],
)
def test_not_13_digits_is_not_an_id_number(value: str) -> None:
    assert parse_sa_id(value, today=TODAY) is None


def test_none_is_no_id_number() -> None:
    assert parse_sa_id(None) is None


def test_default_today_is_the_real_date() -> None:
    found = parse_sa_id("8001015009087")
    assert found is not None and found.birth_date == date(1980, 1, 1)


def test_the_result_is_frozen() -> None:
    found = parse_sa_id("8001015009087", today=TODAY)
    assert found is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.sex = "F"  # type: ignore[misc]


@pytest.mark.parametrize(
    "typed", ["800101 5009 087", "800101-5009-087", "8001015009087", "ID 800101 5009 087"]
)
def test_digits_only_makes_every_spelling_meet(typed: str) -> None:
    assert digits_only(typed).endswith("8001015009087")


def test_no_issue_when_the_header_agrees() -> None:
    found = parse_sa_id("8001015009087", today=TODAY)
    assert found is not None
    assert quality_issues(found, "19800101", "M") == []
    assert quality_issues(found, "1980-01-01", "m ") == []


def test_a_different_birth_date_and_sex_are_flagged_in_words() -> None:
    found = parse_sa_id(with_check("800102500908"), today=TODAY)
    assert found is not None
    assert quality_issues(found, "19800101", "F") == [
        "birth date 19800101 in the header, 19800102 from the SA ID number",
        "sex F in the header, M from the SA ID number",
    ]


def test_missing_or_unusable_header_values_are_not_mismatches() -> None:
    found = parse_sa_id("8001015009087", today=TODAY)
    assert found is not None
    assert quality_issues(found, None, None) == []
    assert quality_issues(found, "", "") == []
    assert quality_issues(found, "unknown", "O") == []


def test_a_patient_over_100_is_not_a_mismatch_the_id_cannot_tell_the_century() -> None:
    found = parse_sa_id(with_check("250101012308"), today=TODAY)
    assert found is not None and found.birth_date == date(2025, 1, 1)
    assert quality_issues(found, "19250101", "F") == []
