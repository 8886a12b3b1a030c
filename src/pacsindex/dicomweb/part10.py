"""Part 10 framing of an instance file for sending: what must go before the file's own bytes so that a
standard client (pydicom, dicomweb-client, OHIF) can parse it, and which transfer syntax it is in.

Old archives hold raw datasets: no 128-byte preamble, no "DICM", no file meta group. pydicom reads them
with `force=True`, but a client given one over WADO-RS or WADO-URI rejects it (dicomweb-client raises
InvalidDicomError). Such a file is sent behind a file meta header made here: preamble, "DICM", and group 2
with its exact group length, the transfer syntax detected from the dataset's encoding (implicit or explicit
VR, little or big endian) and the instance's SOP class and instance UIDs. A file with a meta group but no
preamble gets the preamble and "DICM" only. The file itself is never changed or copied: the header is a
few hundred bytes kept in memory and the rest is streamed from where the file lives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

__all__ = ["Framing", "frame_file", "syntax_of", "wrapped_meta"]

log = logging.getLogger(__name__)

PREAMBLE = b"\x00" * 128
MAGIC = b"DICM"
_HEAD = len(PREAMBLE) + len(MAGIC)
_READ_ERRORS = (InvalidDicomError, ValueError, TypeError, AttributeError, KeyError, EOFError, OSError)


@dataclass(frozen=True, slots=True)
class Framing:
    """How one file goes out: `prefix` (empty for a proper Part 10 file), then its `size` bytes."""

    prefix: bytes
    size: int
    TransferSyntaxUID: str | None

    @property
    def length(self) -> int:
        """The exact number of bytes sent for this file."""
        return len(self.prefix) + self.size

    @property
    def wrapped(self) -> bool:
        return bool(self.prefix)


def syntax_of(ds: pydicom.Dataset) -> str:
    implicit, little = ds.original_encoding
    if implicit:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def wrapped_meta(sop_class: str, sop_instance: str, syntax: str) -> bytes:
    """Preamble, "DICM" and a file meta group (with its group length) for a raw dataset."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(syntax)
    buf = DicomBytesIO()
    write_file_meta_info(buf, meta, enforce_standard=True)
    return PREAMBLE + MAGIC + buf.getvalue()


def frame_file(fh: IO[bytes], known_syntax: str | None = None) -> Framing:
    """How to send the open file `fh`; leaves it at its start. `known_syntax` (from the index) saves reading
    the meta group of a proper Part 10 file."""
    head = fh.read(_HEAD)
    size = fh.seek(0, 2)
    fh.seek(0)
    if head[128:132] == MAGIC:
        syntax = known_syntax
        if syntax is None:
            try:
                meta = pydicom.dcmread(fh, stop_before_pixels=True, specific_tags=["SOPClassUID"]).file_meta
                syntax = str(meta.TransferSyntaxUID) if "TransferSyntaxUID" in meta else None
            except _READ_ERRORS as exc:
                log.debug("DICOMweb: file meta not read: %s", exc)
            fh.seek(0)
        return Framing(b"", size, syntax)
    try:
        ds = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
    except _READ_ERRORS as exc:
        log.debug("DICOMweb: not a dataset pydicom can read, sent as it is: %s", exc)
        fh.seek(0)
        return Framing(b"", size, known_syntax)
    finally:
        fh.seek(0)
    if head[:2] == b"\x02\x00" and "TransferSyntaxUID" in ds.file_meta:
        # A meta group without the preamble: it only lacks the first 132 bytes.
        return Framing(PREAMBLE + MAGIC, size, str(ds.file_meta.TransferSyntaxUID))
    sop_class = ds.get("SOPClassUID")
    sop_instance = ds.get("SOPInstanceUID")
    syntax = syntax_of(ds)
    if not sop_class or not sop_instance:
        log.debug("DICOMweb: a raw dataset without SOP class or instance UID is sent as it is")
        return Framing(b"", size, syntax)
    return Framing(wrapped_meta(str(sop_class), str(sop_instance), syntax), size, syntax)
