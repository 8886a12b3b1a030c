"""The operations settings from the file and the environment, and one clear error for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsindex.config.settings import load
from pacsindex.errors import ConfigError


def test_operations_settings_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "pacsindex.toml"
    config.write_text(
        'index_every_minutes = 5\nindex_full_at = "03:30"\nretention_audit_days = 3650\n'
        "disk_warning_percent = 20\n",
        encoding="utf-8",
    )
    s = load(config, environ={"PACSINDEX_INDEX_EVERY_MINUTES": "0.5", "PACSINDEX_RETENTION_SENDS_DAYS": "7"})
    assert (s.index_every_minutes, s.index_full_at, s.retention_audit_days) == (0.5, "03:30", 3650)
    assert (s.retention_sends_days, s.disk_warning_percent, s.retention_shares_days) == (7, 20, 365)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INDEX_EVERY_MINUTES", "-1", "index_every_minutes"),
        ("INDEX_EVERY_MINUTES", "soon", "bad value"),
        ("INDEX_FULL_AT", "25:00", "index_full_at"),
        ("RETENTION_AUDIT_DAYS", "0", "retention_audit_days"),
        ("DISK_WARNING_PERCENT", "101", "disk_warning_percent"),
    ],
)
def test_a_bad_operations_setting_is_one_clear_error(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(environ={f"PACSINDEX_{name}": value})
