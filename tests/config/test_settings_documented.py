"""Every setting a practice can set is in README.md's Configuration section, by name, and no setting there
is missing from `Settings` (a setting that exists only in the README would be a promise nothing keeps)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from pacsindex.config.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
NOT_IN_THE_TABLE = {
    "extra",  # the file's other tables ([medical_aids], [hospitals]): their own README section
    "smb_password",  # PACSINDEX_SMB_PASSWORD only, never the file: README's SMB section
    "shares_db",  # PACSINDEX_SHARES_DB, in the sharing section
}


def configuration_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Configuration")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_setting_is_documented_in_the_configuration_table() -> None:
    section = configuration_section()
    missing = [
        f.name for f in fields(Settings) if f.name not in NOT_IN_THE_TABLE and f"`{f.name}`" not in section
    ]
    assert not missing, f"README's Configuration table lacks {missing}"


def test_the_configuration_table_names_only_real_settings() -> None:
    names = {f.name for f in fields(Settings)}
    rows = [line for line in configuration_section().splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert documented and documented <= names, sorted(documented - names)
