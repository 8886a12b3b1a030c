"""Medical schemes and hospitals found in the messy strings real SA archives hold, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsindex.config.settings import load
from pacsindex.errors import ConfigError
from pacsindex.index.sa.samatch import (
    Hospital,
    MedicalAid,
    default_tables,
    load_tables,
    match_hospital,
    match_medical_aid,
    words,
)

NETCARE, LIFE, MEDICLINIC = "Netcare", "Life Healthcare", "Mediclinic"
GAUTENG, WESTERN_CAPE, KZN = "Public (Gauteng Health)", "Public (Western Cape Health)", "Public (KZN Health)"


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("DISCOVERY HEALTH MED SCHEME", "Discovery Health Medical Scheme"),
        ("disc. health", "Discovery Health Medical Scheme"),
        ("DHMS", "Discovery Health Medical Scheme"),
        ("DiscoveryHealth", "Discovery Health Medical Scheme"),
        ("Discovery KeyCare Plus", "Discovery Health Medical Scheme"),
        ("Govt Employees Medical Scheme", "Government Employees Medical Scheme"),
        ("GEMS EMERALD", "Government Employees Medical Scheme"),
        ("G.E.M.S. - Onyx", "Government Employees Medical Scheme"),
        ("gems/ruby", "Government Employees Medical Scheme"),
        ("Momentum Health (Ingwe option)", "Momentum Medical Scheme"),
        ("BONITAS MED FUND - BONCAP", "Bonitas Medical Fund"),
        ("BonComprehensive", "Bonitas Medical Fund"),
        ("MEDSHIELD MEDICAL SCHEME", "Medshield Medical Scheme"),
        ("Bestmed Beat2", "Bestmed Medical Scheme"),
        ("FEDHEALTH", "Fedhealth Medical Scheme"),
        ("polmed marine", "Polmed"),
        ("S.A.P.S. Medical Scheme", "Polmed"),
        ("Medi-Help", "Medihelp Medical Scheme"),
        ("Profmed ProSecure", "Profmed"),
        ("SIZWE HOSMED", "Sizwe Hosmed Medical Fund"),  # not plain Hosmed: the longer alias wins
        ("Hosmed", "Hosmed Medical Aid Scheme"),
        ("Key Health Medical Scheme", "KeyHealth Medical Scheme"),
        ("Compcare Wellness", "CompCare Wellness Medical Scheme"),
        ("BANKMED", "Bankmed"),
        ("Anglo Medical", "Anglo Medical Scheme"),
        ("GENESIS MEDICAL SCHEME", "Genesis Medical Scheme"),
        ("LA-Health", "LA Health Medical Scheme"),
        ("Makoti Medical Scheme", "Makoti Medical Scheme"),
        ("Platinum Health", "Platinum Health Medical Scheme"),
        ("THEBEMED", "Thebemed"),
        ("Umvuzo Health", "Umvuzo Health Medical Scheme"),
        ("Cape Medical Plan", "Cape Medical Plan"),
        ("Spectramed", "Spectramed"),
        ("SELFMED", "Selfmed Medical Scheme"),
        ("  Médshield  ", "Medshield Medical Scheme"),  # accents and spaces from a careless keyboard
    ],
)
def test_schemes_found_in_messy_text(text: str, scheme: str) -> None:
    found = match_medical_aid(text)
    assert found is not None and found.name == scheme


@pytest.mark.parametrize(
    "text",
    [
        "GEMSTONE",  # GEMS only as a word of its own
        "gemsbok",
        "Lifestyle",
        "PRIVATE",
        "CASH",
        "Sizwe Mthembu",  # a person, not Sizwe Hosmed
        "Makoti",  # "bride": a word, not the scheme
        "Genesis",
        "LA",
        "discovered incidentally",
        "",
        None,
    ],
)
def test_non_schemes_are_not_matched(text: str | None) -> None:
    assert match_medical_aid(text) is None


def test_the_scheme_is_found_in_any_of_several_fields() -> None:
    found = match_medical_aid(None, "PID-77\\8001015009087", "Fedhealth flexiFED 3")
    assert found == MedicalAid("Fedhealth Medical Scheme")


def test_the_longest_alias_wins_across_fields() -> None:
    assert match_medical_aid("Hosmed", "Sizwe Hosmed") == MedicalAid("Sizwe Hosmed Medical Fund")


@pytest.mark.parametrize(
    ("text", "name", "group"),
    [
        ("NETCARE MILPARK HOSP", "Netcare Milpark Hospital", NETCARE),
        ("Netcare-Milpark", "Netcare Milpark Hospital", NETCARE),
        ("MILPARK HOSPITAL CT", "Netcare Milpark Hospital", NETCARE),
        ("NETCARE SUNNINGHILL", "Netcare Sunninghill Hospital", NETCARE),
        ("Life Fourways", "Life Fourways Hospital", LIFE),
        ("LIFE FOURWAYS HOSPITAL - MRI", "Life Fourways Hospital", LIFE),
        ("Mediclinic Sandton - CT1", "Mediclinic Sandton", MEDICLINIC),
        ("MEDI-CLINIC CAPE TOWN", "Mediclinic Cape Town", MEDICLINIC),
        ("CHRIS HANI BARAGWANATH ACAD HOSP", "Chris Hani Baragwanath Academic Hospital", GAUTENG),
        ("Chris Hani Bara", "Chris Hani Baragwanath Academic Hospital", GAUTENG),
        ("CHBAH XRAY 2", "Chris Hani Baragwanath Academic Hospital", GAUTENG),
        ("Bara Radiology", "Chris Hani Baragwanath Academic Hospital", GAUTENG),
        ("GROOTE SCHUUR HOSPITAL", "Groote Schuur Hospital", WESTERN_CAPE),
        ("GSH C-ARM", "Groote Schuur Hospital", WESTERN_CAPE),
        (
            "Charlotte Maxeke Johannesburg Academic Hosp",
            "Charlotte Maxeke Johannesburg Academic Hospital",
            GAUTENG,
        ),
        ("CMJAH", "Charlotte Maxeke Johannesburg Academic Hospital", GAUTENG),
        ("Joburg Gen", "Charlotte Maxeke Johannesburg Academic Hospital", GAUTENG),
        ("STEVE BIKO ACADEMIC HOSPITAL", "Steve Biko Academic Hospital", GAUTENG),
        ("SBAH", "Steve Biko Academic Hospital", GAUTENG),
        ("IALCH RADIOLOGY", "Inkosi Albert Luthuli Central Hospital", KZN),
        ("Inkosi Albert Luthuli Central Hosp", "Inkosi Albert Luthuli Central Hospital", KZN),
        ("TYGERBERG HOSP", "Tygerberg Hospital", WESTERN_CAPE),
        ("King Edward VIII", "King Edward VIII Hospital", KZN),
        ("DR GEORGE MUKHARI ACADEMIC", "Dr George Mukhari Academic Hospital", GAUTENG),
        ("Helen Joseph Hosp", "Helen Joseph Hospital", GAUTENG),
        ("RED CROSS CHILDRENS HOSP", "Red Cross War Memorial Children's Hospital", WESTERN_CAPE),
        (
            "Red Cross War Memorial Children's Hospital",
            "Red Cross War Memorial Children's Hospital",
            WESTERN_CAPE,
        ),
    ],
)
def test_facilities_found_in_messy_text(text: str, name: str, group: str) -> None:
    assert match_hospital(text) == Hospital(name, group)


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("NETCARE RADIOLOGY", NETCARE),
        ("LIFE HEALTHCARE", LIFE),
        ("LHC - CT", LIFE),
        ("Life Radiology", LIFE),
        ("MEDICLINIC", MEDICLINIC),
        ("National Hospital Network", "NHN"),
    ],
)
def test_only_the_group_when_no_facility_is_named(text: str, group: str) -> None:
    assert match_hospital(text) == Hospital(None, group)


def test_a_facility_beats_its_group_and_a_longer_group_alias() -> None:
    # "Life Healthcare" is a longer alias than "Life Fourways", but a facility is more specific.
    assert match_hospital("LIFE HEALTHCARE", "Life Fourways") == Hospital("Life Fourways Hospital", LIFE)


@pytest.mark.parametrize(
    "text",
    [
        "Lifestyle Radiology",  # Life only as a word of its own
        "Steve Biko Road, Pretoria",  # a street named after a person, not the hospital
        "12 Charlotte Maxeke Street",
        "Barak Imaging",
        "",
        "Morningside Radiology",  # a suburb
        "Sandton City Radiology",
        "CT 1",
        "STATION01",
        None,
    ],
)
def test_non_hospitals_are_not_matched(text: str | None) -> None:
    assert match_hospital(text) is None


def test_words_fold_accents_case_punctuation_and_dotted_acronyms() -> None:
    assert words("Médi-Clinic  SANDTON") == ["medi", "clinic", "sandton"]
    assert words("C.H.B.A.H.") == ["chbah"]
    assert words("G E M S Emerald") == ["gems", "emerald"]
    assert words("R K Khan") == ["rk", "khan"]


def test_settings_sections_add_schemes_aliases_and_hospitals(tmp_path: Path) -> None:
    settings_file = tmp_path / "pacsindex.toml"
    settings_file.write_text(
        """
[medical_aids]
ignore_aliases = ["Momentum"]
[[medical_aids.scheme]]
name = "discovery health medical scheme"
aliases = ["Vitality Plan"]
group = "Open"
[[medical_aids.scheme]]
name = "Wooltru Healthcare Fund"
aliases = ["Wooltru", "WHF"]
group = "Restricted"

[hospitals]
ignore_aliases = ["Life"]
[[hospitals.group]]
name = "Busamed"
[[hospitals.facility]]
name = "Busamed Modderfontein Private Hospital"
group = "busamed"
aliases = ["Busamed Modderfontein", "Modderfontein Private"]
[[hospitals.facility]]
name = "Radiology Hill Clinic"
aliases = ["RHC"]
""",
        encoding="utf-8",
    )
    settings = load(settings_file, environ={})
    tables = load_tables(settings.extra)
    assert tables.medical_aid("VITALITY PLAN") == MedicalAid("Discovery Health Medical Scheme", "Open")
    assert tables.medical_aid("DHMS") == MedicalAid("Discovery Health Medical Scheme", "Open")  # kept
    assert tables.medical_aid("whf") == MedicalAid("Wooltru Healthcare Fund", "Restricted")
    assert tables.medical_aid("MOMENTUM") is None  # ignored
    assert tables.medical_aid("Momentum Health") == MedicalAid(
        "Momentum Medical Scheme"
    )  # other aliases stay
    assert tables.hospital("MODDERFONTEIN PRIVATE HOSP") == Hospital(
        "Busamed Modderfontein Private Hospital", "Busamed"
    )
    assert tables.hospital("RHC CT") == Hospital("Radiology Hill Clinic", None)
    assert tables.hospital("Life Radiology") is None
    assert tables.hospital("Life Fourways") == Hospital("Life Fourways Hospital", LIFE)
    assert len(tables.medical_aids) == len(default_tables().medical_aids) + 1


def test_a_practice_alias_takes_an_alias_from_a_built_in_entry() -> None:
    tables = load_tables({"hospitals": {"facility": [{"name": "Bara Imaging Centre", "aliases": ["Bara"]}]}})
    assert tables.hospital("BARA CT") == Hospital("Bara Imaging Centre", None)
    assert tables.hospital("CHBAH") == Hospital("Chris Hani Baragwanath Academic Hospital", GAUTENG)


def test_replace_drops_the_built_in_table() -> None:
    tables = load_tables({"medical_aids": {"replace": True, "scheme": [{"name": "Only Scheme"}]}})
    assert tables.medical_aids == (MedicalAid("Only Scheme"),)
    assert tables.medical_aid("Discovery Health") is None
    assert tables.medical_aid("only scheme") == MedicalAid("Only Scheme")
    assert tables.hospital("Netcare Milpark") == Hospital("Netcare Milpark Hospital", NETCARE)


def test_the_built_in_tables_cover_the_big_names() -> None:
    names = {a.name for a in default_tables().medical_aids}
    assert len(names) >= 25
    groups = {h.group for h in default_tables().hospitals if h.name is None}
    assert {NETCARE, LIFE, MEDICLINIC, "NHN", GAUTENG, WESTERN_CAPE, KZN} <= groups


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"medical_aids": {"schemes": []}}, "unknown keys: schemes"),
        ({"medical_aids": {"scheme": {"name": "X"}}}, "must be a list"),
        ({"medical_aids": {"scheme": [{"aliases": ["X"]}]}}, "needs a name"),
        ({"medical_aids": {"scheme": [{"name": "X", "alias": ["Y"]}]}}, "unknown keys: alias"),
        ({"medical_aids": {"scheme": [{"name": "X", "aliases": "Y"}]}}, "must be a list"),
        ({"medical_aids": {"scheme": [{"name": "X", "aliases": ["--"]}]}}, "non-empty"),
        ({"hospitals": {"replace": "yes"}}, "true or false"),
        ({"hospitals": {"facility": [{"name": "X", "group": 3}]}}, "group of 'X'"),
        ({"hospitals": "Netcare"}, "must be a table"),
    ],
)
def test_bad_sections_say_what_is_wrong(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_tables(overrides)
