"""Names and dates as people read them: the command line and the PDF reports show "MÜLLER, Hans", never
"MÜLLER^HANS", by the same rules as the web page (static/format.js)."""

from __future__ import annotations

import pytest

from pacsindex.dicom.names import person_name, shown_date


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("MÜLLER^HANS", "MÜLLER, Hans"),
        ("VAN DER MERWE^JOHANNES PETRUS", "VAN DER MERWE, Johannes Petrus"),
        ("SMITH^K^^DR", "DR SMITH, K"),
        ("DR^PATEL", "DR PATEL"),
        ("Иванов^Иван", "Иванов, Иван"),
        ("NKOSI^JP", "NKOSI, JP"),
        ("O'BRIEN^MARY-ANNE", "O'BRIEN, Mary-Anne"),
        ("Yamada^Tarou=山田^太郎", "Yamada, Tarou"),
        ("", "(no name)"),
        (None, "(no name)"),
        ("^^^^", "(no name)"),
    ],
)
def test_person_names_are_shown_without_carets(stored: str | None, shown: str) -> None:
    assert person_name(stored) == shown


def test_dates_are_shown_with_dashes() -> None:
    assert shown_date("20181126") == "2018-11-26"
    assert shown_date("2018") == "2018" and shown_date(None) == ""
