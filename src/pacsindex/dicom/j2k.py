"""JPEG 2000 files without a DICOM wrapper, recognised by their first bytes.

Some archives keep images as raw JPEG 2000 codestreams (.j2k/.j2c: SOC marker FF 4F then SIZ FF 51) or as
JP2 files (the 12-byte JPEG 2000 signature box), with the patient data in a separate catalog. The scanner
reports them per folder as "images without DICOM header", not as errors.
"""

from __future__ import annotations

from typing import Literal

J2kKind = Literal["j2k", "jp2"]

CODESTREAM_MAGIC = b"\xff\x4f\xff\x51"
JP2_SIGNATURE = b"\x00\x00\x00\x0c\x6a\x50\x20\x20\x0d\x0a\x87\x0a"
PREFIX_SIZE = len(JP2_SIGNATURE)  # the most bytes `j2k_kind` needs to decide


def j2k_kind(prefix: bytes) -> J2kKind | None:
    """ "j2k" for a raw codestream, "jp2" for a JP2 file, None for anything else (or too few bytes)."""
    if prefix.startswith(CODESTREAM_MAGIC):
        return "j2k"
    if prefix.startswith(JP2_SIGNATURE):
        return "jp2"
    return None
