"""One file's DICOM header → a `FileResult`: a `HeaderRecord`, or a classified reason why not.

Only the header is read: parsing stops at the first element past the last tag we keep (InstanceNumber,
(0020,0013)), so pixel data and the private groups after it are never read. The fast path
(`fastpath.py`) walks element headers itself; anything unusual goes to pydicom (`fallback.py`). Files
without the 128-byte preamble and "DICM" (raw datasets from old archives, little or big endian) are
recognised by their first element and read too. Text is decoded per SpecificCharacterSet by pydicom.

`read_header` never raises for a bad file: a bad file is data (`FileResult` with status "error" or
"non_dicom" and a reason), so one bad file never stops a run. What was odd about a file that was still read
(a warning pydicom gave, a value that could not be decoded, an ACR-NEMA date) is kept as its `note`.
A read that failed for a passing reason (network, timeout, a file still open in another program) is
marked `transient`, so the next run tries it again.
"""

from __future__ import annotations

import errno
import logging
import struct
from typing import IO, Callable, Literal

from pacsindex.dicom.fallback import Values, parse, pydicom_values
from pacsindex.dicom.fastpath import EXPLICIT_VRS, FIRST_READ, Fallback, Window, fast_values
from pacsindex.dicom.j2k import j2k_kind
from pacsindex.dicom.record import (
    ALL_FIELDS,
    FIELD_TABLE,
    IMAGE_WITHOUT_HEADER,
    FileResult,
    HeaderRecord,
    Status,
    finish_values,
    int_value,
    series_key,
    text_value,
)

__all__ = [
    "ALL_FIELDS",
    "FIELD_TABLE",
    "IMAGE_WITHOUT_HEADER",
    "FileResult",
    "HeaderRecord",
    "Status",
    "is_transient",
    "open_local",
    "read_header",
    "series_key",
    "sniff",
]

log = logging.getLogger(__name__)

_J2K_NAMES = {"j2k": "JPEG 2000 codestream", "jp2": "JP2 file"}
_DICOM_NAME_SUFFIXES = (".dcm", ".dicom", ".ima", ".dic")
# Groups a raw (preamble-less) dataset plausibly starts with: meta, identifying, patient, acquisition.
_RAW_START_GROUPS = {0x0002, 0x0008, 0x0010, 0x0018, 0x0020}
_MAX_NOTE = 500
# Why a read may pass: the network, a timeout, a file another program has open (a modality still writing
# it: Windows' sharing and lock violations), a busy resource. Anything else (a corrupt header, permission
# denied, a file that is gone) stays an error until the file changes.
_TRANSIENT_ERRNOS = {
    errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.ENETDOWN,
    errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EAGAIN, errno.EBUSY, errno.ETXTBSY,
}  # fmt: skip
_TRANSIENT_WINERRORS = {32, 33, 53, 64, 121, 1231}  # sharing, lock, path/network gone, timeout


# Kept for callers that used the old private names.
_text = text_value
_int = int_value


def is_transient(exc: OSError) -> bool:
    """Whether an error reading a file may pass by itself (so the file is read again next run)."""
    if isinstance(exc, (TimeoutError, ConnectionError, BlockingIOError, InterruptedError)):
        return True
    if getattr(exc, "winerror", None) in _TRANSIENT_WINERRORS:
        return True
    return exc.errno in _TRANSIENT_ERRNOS


def sniff(prefix: bytes) -> Literal["part10", "raw", "none"]:
    """Classify a file by its first bytes: DICOM Part 10, a raw dataset without preamble, or neither."""
    if len(prefix) >= 132 and prefix[128:132] == b"DICM":
        return "part10"
    if len(prefix) < 8:
        return "none"
    for order in ("<", ">"):  # little endian, then big endian (old ACR-NEMA exports)
        group, elem = struct.unpack_from(order + "HH", prefix)
        if group not in _RAW_START_GROUPS or elem > 0x0100 and group != 0x0018:
            continue
        if prefix[4:6] in EXPLICIT_VRS:
            return "raw"
        if order == ">":
            continue  # big endian implicit VR does not exist in DICOM
        (length,) = struct.unpack_from("<I", prefix, 4)
        # Implicit VR: the first element is small (a UID, a code string, a group length).
        if 0 < length <= 1024 or group == 0x0002:
            return "raw"
    return "none"


def read_header(
    path: str,
    opener: Callable[[str], IO[bytes]],
    size: int | None = None,
    name_hint: str | None = None,
    fast: bool = True,
) -> FileResult:
    """Read one file's header. Never raises for a bad file: returns a FileResult saying why.

    The fast path walks element headers itself and hands only the kept values to pydicom for decoding;
    anything it does not handle (big endian, deflate, odd sequences, a value past what it read) goes to
    pydicom's own parser, which is also the reference the tests compare the fast path against."""
    notes: list[str] = []
    try:
        with opener(path) as fp:
            first = fp.read(FIRST_READ)
            if size is None or len(first) < FIRST_READ:
                size = len(first) if len(first) < FIRST_READ else fp.seek(0, 2)
            if not first:
                name = (name_hint or path).lower()
                if name.endswith(_DICOM_NAME_SUFFIXES):
                    return FileResult(path, "error", reason="empty file (0 bytes)")
                return FileResult(path, "non_dicom", reason="empty file (0 bytes)")
            kind = sniff(first)
            if kind == "none":
                j2k = j2k_kind(first)
                if j2k is not None:
                    return FileResult(path, "non_dicom", reason=f"{IMAGE_WITHOUT_HEADER} ({_J2K_NAMES[j2k]})")
                return FileResult(path, "non_dicom", reason="no DICOM signature")
            outcome: Values | str | None = None
            if fast:
                try:
                    outcome = fast_values(Window(fp, first, size), kind == "part10", notes)
                except Fallback:
                    outcome = None
                    notes.clear()
            if outcome is None:
                fp.seek(0)
                ds, truncated = parse(fp, size, force=(kind == "raw"), notes=notes)
                outcome = truncated if truncated else pydicom_values(ds, notes)
    except FileNotFoundError:
        return FileResult(path, "error", reason="vanished: the file was removed after it was listed")
    except PermissionError as exc:
        return FileResult(path, "error", reason=f"permission denied: {exc.strerror or exc}")
    except OSError as exc:
        return FileResult(
            path, "error", reason=f"cannot read: {exc.strerror or exc}", transient=is_transient(exc)
        )
    except Exception as exc:  # pydicom raises many kinds on corrupt input; each is one bad file
        return FileResult(path, "error", reason=f"corrupt DICOM header: {type(exc).__name__}: {exc}"[:500])
    if isinstance(outcome, str):
        return FileResult(path, "error", reason=outcome)
    values, media_class, syntax, is_dir = outcome
    if is_dir:
        return FileResult(path, "non_dicom", reason="DICOMDIR (media directory, not an image)")
    if not values["SOPClassUID"] and media_class:
        values["SOPClassUID"] = media_class
    if not (values["SOPInstanceUID"] or values["SeriesInstanceUID"] or values["StudyInstanceUID"]):
        return FileResult(path, "error", reason="not a usable DICOM object: no SOP, study or series UID")
    values["TransferSyntaxUID"] = syntax
    finish_values(values, notes)
    note = "; ".join(dict.fromkeys(notes))[:_MAX_NOTE] if notes else None
    return FileResult(path, "dicom", record=HeaderRecord(**values), note=note)


def open_local(path: str) -> IO[bytes]:
    """Open a local (or mapped-drive, or UNC) file read-only, buffered so a header costs one or two reads."""
    return open(path, "rb", buffering=16384)
