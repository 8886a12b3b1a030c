"""JPEG 2000 without a DICOM wrapper is told apart from DICOM and everything else by its first bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_dicom
from pacsindex.dicom.j2k import CODESTREAM_MAGIC, JP2_SIGNATURE, PREFIX_SIZE, j2k_kind

# A codestream's start: SOC, then the SIZ marker segment (Lsiz 41, a 512x512 single-component image).
CODESTREAM = CODESTREAM_MAGIC + b"\x00\x29\x00\x00" + (512).to_bytes(4, "big") * 2 + b"\x00" * 40
# A JP2 file: signature box, then the file type box ("ftyp", brand "jp2 ").
JP2 = JP2_SIGNATURE + b"\x00\x00\x00\x14ftypjp2 \x00\x00\x00\x00jp2 " + b"\x00" * 40


def test_raw_codestream() -> None:
    assert j2k_kind(CODESTREAM) == "j2k"


def test_jp2_file() -> None:
    assert j2k_kind(JP2) == "jp2"


def test_a_prefix_of_the_documented_size_is_enough() -> None:
    assert j2k_kind(JP2[:PREFIX_SIZE]) == "jp2"
    assert j2k_kind(CODESTREAM[:PREFIX_SIZE]) == "j2k"


@pytest.mark.parametrize(
    "prefix",
    [
        b"",
        b"\xff\x4f",  # SOC alone: too short to say
        b"\xff\x4f\xff\x52",  # SOC then not SIZ
        JP2_SIGNATURE[:11],  # cut short
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",  # baseline JPEG
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d",
        b"\x00\x00\x00\x0cjP  \r\n\x87\x00",  # one byte off
        b"Thumbs.db is not an image",
    ],
)
def test_everything_else_is_not_jpeg_2000(prefix: bytes) -> None:
    assert j2k_kind(prefix) is None


def test_a_dicom_file_is_not_bare_jpeg_2000(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "IM1.dcm")
    assert j2k_kind(path.read_bytes()[:PREFIX_SIZE]) is None
