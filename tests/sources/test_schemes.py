"""Roots and stored paths by kind of address: a registry by scheme (`sources.files.SCHEMES`) picks the
source and reader for smb:// addresses; plain paths (folders, drive letters, UNC) stay local; an address
of a kind pacsindex cannot read is one clear line and exit 2, not a "folder not found"."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from pacsindex.errors import ConfigError
from pacsindex.sources.files import LocalReader, LocalTree, reader_for, scheme_of, source_for
from pacsindex.sources.smb.reader import SmbReader, SmbTree


@pytest.mark.parametrize(
    ("path", "scheme"),
    [
        ("smb://nas/Image Archiving/2024", "smb"),
        ("SMB://NAS/share", "smb"),
        ("C:\\Image Archiving", None),
        ("Z:/Image Archiving", None),
        ("\\\\nas\\Image Archiving", None),
        ("/mnt/pacs", None),
        ("https://pacs.example.co.za/x", "https"),
    ],
)
def test_the_scheme_of_an_address(path: str, scheme: str | None) -> None:
    assert scheme_of(path) == scheme


def test_sources_and_readers_come_from_the_registry(tmp_path: Path) -> None:
    assert isinstance(source_for("smb://nas/share/folder"), SmbTree)
    assert isinstance(reader_for("smb://nas/share/folder/IM0.dcm"), SmbReader)
    assert isinstance(source_for(str(tmp_path)), LocalTree)
    assert isinstance(reader_for(str(tmp_path / "IM0.dcm")), LocalReader)
    with pytest.raises(ConfigError, match="https:// addresses cannot be indexed"):
        source_for("https://pacs.example.co.za/archive")


def test_the_cli_says_which_addresses_it_reads(tmp_path: Path) -> None:
    proc = run_cli("index", "ftp://nas/archive", "--db", str(tmp_path / "p.db"), check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "smb://" in lines[0], proc.stderr
