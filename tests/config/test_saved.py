"""Saved admin settings: owner-only files in the data directory, atomic replacement, secrets hidden."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from pacsindex.config import saved
from pacsindex.errors import ConfigError


def test_nothing_saved_yet_is_empty(tmp_path: Path) -> None:
    assert saved.load(tmp_path, "nas") == {}


def test_round_trip_and_replace(tmp_path: Path) -> None:
    saved.save(tmp_path / "data", "nas", {"host": "nas", "password": "s3cret"})
    saved.save(tmp_path / "data", "nas", {"host": "nas2", "password": "other"})
    assert saved.load(tmp_path / "data", "nas") == {"host": "nas2", "password": "other"}
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["nas.json"]  # no temporary files left


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_file_is_owner_only(tmp_path: Path) -> None:
    path = saved.save(tmp_path, "orthanc", {"password": "x"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "nas.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="damaged.*save them again"):
        saved.load(tmp_path, "nas")


def test_public_hides_secrets_but_says_whether_set(tmp_path: Path) -> None:
    shown = saved.public({"host": "nas", "password": "s3cret"}, ["password"])
    assert shown == {"host": "nas", "password_set": True}
    assert saved.public({"host": "nas"}, ["password"]) == {"host": "nas", "password_set": False}


def test_section_names_cannot_escape_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        saved.save(tmp_path, "../evil", {})
