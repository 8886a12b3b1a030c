"""South African ID numbers: finding one in a patient ID field, what it says, and where it disagrees with
the header.

An SA ID number is 13 digits, YYMMDD SSSS C A Z:

    YYMMDD  date of birth (the century is not written: the one that does not put the birth in the future)
    SSSS    0000–4999 female, 5000–9999 male
    C       0 South African citizen, 1 permanent resident (2, refugee, on newer numbers)
    A       no longer meaningful (usually 8)
    Z       Luhn check digit over the other twelve

Receptionists type it with spaces or hyphens ("800101 5009 087", "800101-5009-087") and PACS keep several
IDs in one field (`\\`-separated values, or just spaces), so `parse_sa_id` looks in each value for runs of
whole digit groups adding up to exactly 13 digits, and keeps the first that passes the check digit, is a real
date and has a known citizenship digit. A number that only looks like one (a hospital number, a phone
number run together) almost never passes all three.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Literal

# Groups of digits joined by a space, a hyphen or " - ": "800101 5009 087", but also "12345 8001015009087"
# (a hospital number, then the ID number, in one field).
_DIGIT_GROUPS = re.compile(r"[0-9]+(?:(?: ?- ?| )[0-9]+)*")
_DIGITS = re.compile(r"[0-9]+")
_NON_DIGITS = re.compile(r"[^0-9]")
_CITIZENSHIP = {"0": True, "1": False, "2": False}


@dataclass(frozen=True, slots=True)
class SaId:
    """What a valid SA ID number says. `number` is the 13 digits without spaces or hyphens."""

    number: str
    birth_date: date
    sex: Literal["F", "M"]
    citizen: bool  # False: permanent resident (or refugee)

    def __str__(self) -> str:
        return f"{self.number[:6]} {self.number[6:10]} {self.number[10:]}"


def digits_only(text: str) -> str:
    """The digits of `text` and nothing else: "800101 5009 087" and "800101-5009-087" both give
    "8001015009087", so an ID number is found however it was typed (index and query alike)."""
    return _NON_DIGITS.sub("", text)


def luhn_ok(number: str) -> bool:
    """True when the last digit of `number` is its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _birth_date(yymmdd: str, today: date) -> date | None:
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    for century in (2000, 1900):
        try:
            born = date(century + yy, mm, dd)
        except ValueError:
            continue  # 29 February exists in 2000 but not in 1900, so try each century on its own
        if born <= today:
            return born
    return None


def _decode(number: str, today: date) -> SaId | None:
    if not luhn_ok(number) or number[10] not in _CITIZENSHIP:
        return None
    born = _birth_date(number[:6], today)
    if born is None:
        return None
    sex: Literal["F", "M"] = "F" if int(number[6:10]) < 5000 else "M"
    return SaId(number=number, birth_date=born, sex=sex, citizen=_CITIZENSHIP[number[10]])


def _candidates(text: str) -> Iterator[str]:
    """Every run of whole digit groups that adds up to exactly 13 digits: a group is never cut, so the
    last 13 digits of a 14-digit number are not a candidate."""
    for value in text.split("\\"):
        for match in _DIGIT_GROUPS.finditer(value):
            groups = _DIGITS.findall(match.group())
            for first in range(len(groups)):
                total = 0
                for last in range(first, len(groups)):
                    total += len(groups[last])
                    if total >= 13:
                        if total == 13:
                            yield "".join(groups[first : last + 1])
                        break


def parse_sa_id(text: str | None, today: date | None = None) -> SaId | None:
    """The first valid SA ID number in a PatientID or OtherPatientIDs value, or None.

    `today` decides the century (injected by tests; default: the local date)."""
    if not text:
        return None
    today = today or date.today()
    for number in _candidates(text):
        found = _decode(number, today)
        if found is not None:
            return found
    return None


def check_digit_typo(text: str | None, today: date | None = None) -> str | None:
    """A 13-digit number in an ID field that would be a valid SA ID number but for its check digit (a real
    date, a known citizenship digit): most likely one mistyped digit. Returns the number, or None."""
    if not text:
        return None
    today = today or date.today()
    for number in _candidates(text):
        if not luhn_ok(number) and number[10] in _CITIZENSHIP and _birth_date(number[:6], today) is not None:
            return number
    return None


def quality_issues(sa_id: SaId, PatientBirthDate: str | None, PatientSex: str | None) -> list[str]:
    """Where the header disagrees with the ID number, as short sentences for a data-quality badge.

    A missing or unreadable header value is not a mismatch. The ID number does not say the century, so
    a header date with the same YYMMDD in another century (a patient over 100) is not one either."""
    issues: list[str] = []
    from_id = sa_id.birth_date.strftime("%Y%m%d")
    header_date = digits_only(PatientBirthDate or "")
    if len(header_date) == 8 and header_date[2:] != sa_id.number[:6]:
        issues.append(f"birth date {header_date} in the header, {from_id} from the SA ID number")
    header_sex = (PatientSex or "").strip().upper()
    if header_sex in ("F", "M") and header_sex != sa_id.sex:
        issues.append(f"sex {header_sex} in the header, {sa_id.sex} from the SA ID number")
    return issues
