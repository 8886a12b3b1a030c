"""One file's DICOM header → a frozen `HeaderRecord` (or a classified reason why not).

Only the header is read: parsing stops at the first element past the last tag we keep (InstanceNumber,
(0020,0013)), so pixel data and the private groups after it are never read. Elements we do not keep are
skipped with a seek, so a 3 MiB private blob before the patient module costs no read. Files without the
128-byte preamble and "DICM" (raw implicit-VR datasets from old archives) are recognised by their first
element and read too. Text is decoded per SpecificCharacterSet by pydicom.

`read_header` never raises for a bad file: a bad file is data (`FileResult` with status "error" or
"non_dicom" and a reason), so one bad file never stops a run.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import warnings
from dataclasses import dataclass
from typing import IO, Any, Callable, Literal

from pacsindex.dicom.j2k import j2k_kind

log = logging.getLogger(__name__)

IMAGE_WITHOUT_HEADER = "image without DICOM header"
_J2K_NAMES = {"j2k": "JPEG 2000 codestream", "jp2": "JP2 file"}

Status = Literal["dicom", "non_dicom", "error"]

# (keyword, tag, VR) of every field kept. pydicom is imported lazily (it takes half a second), so worker
# processes start fast; tests check this table against pydicom's data dictionary.
FIELD_TABLE: tuple[tuple[str, int, str], ...] = (
    ("PatientName", 0x00100010, "PN"),
    ("PatientID", 0x00100020, "LO"),
    ("PatientBirthDate", 0x00100030, "DA"),
    ("PatientSex", 0x00100040, "CS"),
    ("OtherPatientIDs", 0x00101000, "LO"),
    ("IssuerOfPatientID", 0x00100021, "LO"),
    ("StudyInstanceUID", 0x0020000D, "UI"),
    ("StudyDate", 0x00080020, "DA"),
    ("StudyTime", 0x00080030, "TM"),
    ("StudyDescription", 0x00081030, "LO"),
    ("AccessionNumber", 0x00080050, "SH"),
    ("ReferringPhysicianName", 0x00080090, "PN"),
    ("InstitutionName", 0x00080080, "LO"),
    ("StudyID", 0x00200010, "SH"),
    ("SeriesInstanceUID", 0x0020000E, "UI"),
    ("SeriesNumber", 0x00200011, "IS"),
    ("SeriesDescription", 0x0008103E, "LO"),
    ("Modality", 0x00080060, "CS"),
    ("BodyPartExamined", 0x00180015, "CS"),
    ("SeriesDate", 0x00080021, "DA"),
    ("Manufacturer", 0x00080070, "LO"),
    ("StationName", 0x00081010, "SH"),
    ("InstitutionAddress", 0x00080081, "ST"),
    ("InsurancePlanIdentification", 0x00101050, "LO"),
    ("PatientComments", 0x00104000, "LT"),
    ("SOPClassUID", 0x00080016, "UI"),
    ("SOPInstanceUID", 0x00080018, "UI"),
    ("InstanceNumber", 0x00200013, "IS"),
)
ALL_FIELDS = tuple(k for k, _, _ in FIELD_TABLE)
_TAGS = [t for _, t, _ in FIELD_TABLE]
_LAST = max(_TAGS)  # (0020,0013) InstanceNumber: nothing we need comes after it
_INT_FIELDS = {"SeriesNumber", "InstanceNumber"}
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_DICOM_NAME_SUFFIXES = (".dcm", ".dicom", ".ima", ".dic")
# Groups a raw (preamble-less) dataset plausibly starts with: meta, identifying, patient, acquisition.
_RAW_START_GROUPS = {0x0002, 0x0008, 0x0010, 0x0018, 0x0020}
_EXPLICIT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW "
    b"PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)


@dataclass(frozen=True, slots=True)
class HeaderRecord:
    """The header fields pacsindex keeps for one DICOM file, under their DICOM keywords."""

    PatientName: str | None = None
    PatientID: str | None = None
    PatientBirthDate: str | None = None
    PatientSex: str | None = None
    OtherPatientIDs: str | None = None
    IssuerOfPatientID: str | None = None
    StudyInstanceUID: str | None = None
    StudyDate: str | None = None
    StudyTime: str | None = None
    StudyDescription: str | None = None
    AccessionNumber: str | None = None
    ReferringPhysicianName: str | None = None
    InstitutionName: str | None = None
    StudyID: str | None = None
    SeriesInstanceUID: str | None = None
    SeriesNumber: int | None = None
    SeriesDescription: str | None = None
    Modality: str | None = None
    BodyPartExamined: str | None = None
    SeriesDate: str | None = None
    Manufacturer: str | None = None
    StationName: str | None = None
    InstitutionAddress: str | None = None
    InsurancePlanIdentification: str | None = None
    PatientComments: str | None = None
    SOPClassUID: str | None = None
    SOPInstanceUID: str | None = None
    InstanceNumber: int | None = None
    TransferSyntaxUID: str | None = None

    def series_key(self, parent_dir: str) -> str:
        return series_key(self.SeriesInstanceUID, self.StudyInstanceUID, self.SeriesNumber, parent_dir)


@dataclass(frozen=True, slots=True)
class FileResult:
    """What reading one file gave: a record, or a status and a reason."""

    path: str
    status: Status
    record: HeaderRecord | None = None
    reason: str | None = None


def series_key(
    series_uid: str | None, study_uid: str | None, series_number: int | None, parent_dir: str
) -> str:
    """SHA-1 hex of the SeriesInstanceUID; else of "Study|SeriesNumber"; else of "dir|" + the folder."""
    if series_uid:
        basis = series_uid
    elif study_uid and series_number is not None:
        basis = f"{study_uid}|{series_number}"
    else:
        basis = "dir|" + parent_dir
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()


def sniff(prefix: bytes) -> Literal["part10", "raw", "none"]:
    """Classify a file by its first bytes: DICOM Part 10, a raw dataset without preamble, or neither."""
    if len(prefix) >= 132 and prefix[128:132] == b"DICM":
        return "part10"
    if len(prefix) < 8:
        return "none"
    group, elem = struct.unpack_from("<HH", prefix)
    if group not in _RAW_START_GROUPS or elem > 0x0100 and group != 0x0018:
        return "none"
    if prefix[4:6] in _EXPLICIT_VRS:
        return "raw"
    (length,) = struct.unpack_from("<I", prefix, 4)
    # Implicit VR: the first element is small (a UID, a code string, a group length).
    return "raw" if 0 < length <= 1024 or group == 0x0002 else "none"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        parts = [str(v) for v in value]
        text = "\\".join(parts)
    else:
        text = str(value)
    text = text.strip().strip("\x00").strip()
    return text or None


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(str(value)))
        except (TypeError, ValueError):
            return None


def _parse(fp: IO[bytes], size: int, force: bool) -> tuple[Any, str | None]:
    """pydicom's parse up to the last tag we need. Returns (dataset, truncation reason or None)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.filereader import read_partial

    ends: list[int | None] = []

    def stop_when(tag: int, vr: str | None, length: int) -> bool:
        if int(tag) > _LAST:
            ends.append(-1)  # marker: stopped on purpose
            return True
        ends.append(None if length == 0xFFFFFFFF else fp.tell() + length)
        return False

    ds = read_partial(fp, stop_when=stop_when, force=force, specific_tags=[*_TAGS, *_SEQUENCES])  # type: ignore[arg-type]
    if ends and ends[-1] == -1:
        return ds, None
    if not ends:
        return ds, "truncated header: no data set after the file meta information"
    # Ran to the end of the file without reaching a tag past the header: was it cut short?
    last_end = ends[-1]
    if last_end is not None and last_end != size:
        return ds, f"truncated header: element ends at byte {last_end} of a {size}-byte file"
    for elem in ds._dict.values():
        if isinstance(elem, RawDataElement) and elem.value is not None and elem.length != 0xFFFFFFFF:
            if len(elem.value) < elem.length:
                return ds, f"truncated header: {elem.tag} is cut short"
    return ds, None


def _get(ds: Any, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # a malformed value in one field must not lose the file
        log.debug("unreadable value for %s", keyword, exc_info=True)
        return None


def _pydicom_values(ds: Any) -> tuple[dict[str, Any], str | None, str | None, bool]:
    """(field values, media storage SOP class, transfer syntax, is DICOMDIR) from a pydicom dataset."""
    meta = getattr(ds, "file_meta", None)
    media_class = _text(_get(meta, "MediaStorageSOPClassUID")) if meta is not None else None
    media_instance = _text(_get(meta, "MediaStorageSOPInstanceUID")) if meta is not None else None
    syntax = _text(_get(meta, "TransferSyntaxUID")) if meta is not None else None
    values: dict[str, Any] = {}
    for keyword in ALL_FIELDS:
        raw = _get(ds, keyword)
        values[keyword] = _int(raw) if keyword in _INT_FIELDS else _text(raw)
    if not values["SOPInstanceUID"]:
        values["SOPInstanceUID"] = media_instance
    values["OtherPatientIDs"] = _join(
        values["OtherPatientIDs"],
        *(_text(_get(item, "PatientID")) for item in _items(ds, "OtherPatientIDsSequence")),
    )
    values["InsurancePlanIdentification"] = _join(
        values["InsurancePlanIdentification"],
        *(
            _text(_get(item, "CodeMeaning")) or _text(_get(item, "CodeValue"))
            for item in _items(ds, "PatientInsurancePlanCodeSequence")
        ),
    )
    is_dir = media_class == _DICOMDIR_CLASS
    return values, media_class, syntax, is_dir


def _items(ds: Any, keyword: str) -> list[Any]:
    seq = _get(ds, keyword)
    return list(seq) if seq else []


def _join(*parts: str | None) -> str | None:
    """Multi-valued text as DICOM writes it: values separated by backslashes, no empties or repeats."""
    seen: list[str] = []
    for part in parts:
        for value in (part or "").split("\\"):
            if value and value not in seen:
                seen.append(value)
    return "\\".join(seen) or None


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
    try:
        with opener(path) as fp:
            first = fp.read(_FIRST_READ)
            if size is None or len(first) < _FIRST_READ:
                size = len(first) if len(first) < _FIRST_READ else fp.seek(0, 2)
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
            outcome: tuple[dict[str, Any], str | None, str | None, bool] | str | None = None
            if fast:
                try:
                    outcome = _fast_values(_Window(fp, first, size), kind == "part10")
                except _Fallback:
                    outcome = None
            if outcome is None:
                fp.seek(0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds, truncated = _parse(fp, size, force=(kind == "raw"))
                outcome = truncated if truncated else _pydicom_values(ds)
    except FileNotFoundError:
        return FileResult(path, "error", reason="vanished: the file was removed after it was listed")
    except PermissionError as exc:
        return FileResult(path, "error", reason=f"permission denied: {exc.strerror or exc}")
    except OSError as exc:
        return FileResult(path, "error", reason=f"cannot read: {exc.strerror or exc}")
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
    return FileResult(path, "dicom", record=HeaderRecord(**values))


# -- the fast path -------------------------------------------------------------------------------------

_FIRST_READ = 16384
_CHUNK = 16384
# Sequences whose items we keep (other patient IDs, insurance plan codes): files holding them are rare,
# so the fast path hands those to pydicom rather than parse items itself.
_SEQUENCES = frozenset({0x00101002, 0x00100050})
_WANTED = frozenset(_TAGS) | {0x00080005} | _SEQUENCES
_META_WANTED = frozenset({0x00020002, 0x00020003, 0x00020010})
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
_IMPLICIT_LE = "1.2.840.10008.1.2"
_UNSUPPORTED_SYNTAXES = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # deflate, big endian: pydicom
_KEYWORD_OF = {t: k for k, t, _ in FIELD_TABLE}
_VR_OF = {t: vr for _, t, vr in FIELD_TABLE}
_TEXT_VRS = {"LO", "SH", "UC"}
_SINGLE_TEXT_VRS = {"LT", "ST", "UT"}
_unpack_tag = struct.Struct("<HH").unpack_from
_unpack_u16 = struct.Struct("<H").unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from
_unpack_explicit = struct.Struct("<HH2sH").unpack_from  # group, element, VR, short length
_unpack_implicit = struct.Struct("<HHI").unpack_from  # group, element, length


class _Fallback(Exception):
    """The fast path met something it leaves to pydicom."""


class _Truncated(Exception):
    pass


class _Window:
    """A file's bytes read forward in chunks; skipping a large value seeks instead of reading it."""

    __slots__ = ("fp", "buf", "base", "size")

    def __init__(self, fp: IO[bytes], first: bytes, size: int) -> None:
        self.fp = fp
        self.buf = first
        self.base = 0
        self.size = size

    def ensure(self, pos: int, n: int) -> None:
        """Make bytes [pos, pos+n) available in buf (fewer only at the end of the file)."""
        if pos >= self.base and pos + n <= self.base + len(self.buf):
            return
        self.fp.seek(pos)
        self.buf = self.fp.read(max(n, _CHUNK))
        self.base = pos

    def take(self, pos: int, n: int) -> bytes:
        self.ensure(pos, n)
        off = pos - self.base
        data = self.buf[off : off + n]
        if len(data) < n:
            raise _Truncated(f"truncated header: a value at byte {pos} runs past the end of the file")
        return data


def _walk(
    win: _Window,
    pos: int,
    explicit: bool,
    stop: int,
    wanted: frozenset[int],
    found: dict[int, tuple[Any, bytes]],
) -> int:
    """Walk top-level elements from `pos` until a tag past `stop` (returns its position) or the end of the
    file (returns the size). Values of `wanted` tags go into `found` as (VR, bytes).

    This loop runs for every element of every file (~150 in a CT header, private ones included), so it
    reads each element header with one unpack and touches the window only when the header is not in it."""
    size = win.size
    buf = win.buf
    base = win.base
    end = base + len(buf)
    unpack = _unpack_explicit if explicit else _unpack_implicit
    long_vrs = _LONG_VRS
    while True:
        if pos >= size:
            if pos > size:
                raise _Truncated(f"truncated header: an element ends at byte {pos} of a {size}-byte file")
            return pos
        if pos < base or pos + 12 > end:
            win.ensure(pos, 12)
            buf, base = win.buf, win.base
            end = base + len(buf)
            if end - pos < 8:
                raise _Truncated(f"truncated header: {size - pos} stray bytes at the end of the file")
        off = pos - base
        if explicit:
            group, elem, vr, length = unpack(buf, off)
        else:
            group, elem, length = unpack(buf, off)
            vr = None
        tag = group << 16 | elem
        if tag > stop:  # before the VR: the file meta group is explicit, an implicit dataset follows it
            return pos
        if vr is None:
            vpos = pos + 8
        elif vr in long_vrs:
            if end - pos < 12:
                raise _Truncated("truncated header: an element header is cut short")
            (length,) = _unpack_u32(buf, off + 8)
            vpos = pos + 12
        elif b"AA" <= vr <= b"ZZ":
            vpos = pos + 8
        else:
            raise _Fallback("not an explicit VR")
        if length == 0xFFFFFFFF:
            if tag in wanted:
                raise _Fallback("undefined length on a kept element")
            # A sequence (or UN holding one, which is implicit VR inside) of undefined length: skip it.
            pos = _skip_items(win, vpos, explicit and vr != b"UN")
            buf, base = win.buf, win.base
            end = base + len(buf)
            continue
        if tag in wanted:
            if tag in _SEQUENCES:
                raise _Fallback("a sequence we keep")
            if vpos + length <= end:
                found[tag] = (vr, buf[vpos - base : vpos + length - base])
            else:
                found[tag] = (vr, win.take(vpos, length))
                buf, base = win.buf, win.base
                end = base + len(buf)
        pos = vpos + length


def _skip_items(win: _Window, pos: int, explicit: bool) -> int:
    """Skip the items of an undefined-length sequence; return the position after its delimiter."""
    while True:
        head = win.take(pos, 8)
        group, elem = _unpack_tag(head)
        (length,) = _unpack_u32(head, 4)
        tag = group << 16 | elem
        if tag == 0xFFFEE0DD:  # sequence delimiter
            return pos + 8
        if tag != 0xFFFEE000:
            raise _Fallback("unexpected element inside a sequence")
        if length != 0xFFFFFFFF:
            pos += 8 + length
            continue
        # An item of undefined length: walk its elements up to the item delimiter.
        pos = _walk(win, pos + 8, explicit, 0xFFFEE00C, frozenset(), {})
        head = win.take(pos, 8)
        if _unpack_tag(head) != (0xFFFE, 0xE00D):
            raise _Fallback("item without delimiter")
        pos += 8


def _ascii(value: bytes) -> str | None:
    text = value.decode("ascii", "replace").strip(" \x00")
    return text or None


# One-value character sets without code extensions decode with Python's own codecs: importing pydicom for
# them costs ~0.15 s, a third of a one-file run. ISO 2022 escapes and several values go through pydicom.
_PLAIN_CHARSETS = {
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO_IR 192": "utf_8",
}


def _decode(tag: int, value: bytes, charset: str | None) -> Any:
    vr = _VR_OF[tag]
    if vr in ("UI", "DA", "TM", "CS", "AS", "DS", "DT", "AE"):
        return _ascii(value)
    if vr == "IS":
        return _int(_ascii(value))
    if not value:
        return None
    if value.isascii() and b"\x1b" not in value:
        return _text(value.decode("ascii", "replace"))
    codec = _PLAIN_CHARSETS.get(charset.strip()) if charset and "\\" not in charset else None
    if codec is not None and b"\x1b" not in value:
        try:
            plain = value.decode(codec)
            return _text(plain.rstrip("= \x00") if vr == "PN" else plain)  # as pydicom: no empty last group
        except UnicodeDecodeError:
            pass  # pydicom replaces what cannot be decoded (and says so): let it
    import pydicom.values
    from pydicom.charset import convert_encodings

    encodings = convert_encodings([c.strip() for c in charset.split("\\")] if charset else None)
    if vr == "PN":
        text = _text(pydicom.values.convert_PN(value, encodings))
    elif vr in _TEXT_VRS:
        text = _text(pydicom.values.convert_text(value, encodings, vr))
    else:
        text = pydicom.values.convert_single_string(value, encodings, vr)
    return _text(text)


# The files of a series repeat most of their values (patient, study, series): each is decoded once. Values
# are immutable (str, int, None); the cache is emptied when it grows past a few series' worth.
_DECODED: dict[tuple[int, bytes, str | None], Any] = {}
_DECODED_MAX = 20000
_MISSING = object()


def _fast_values(win: _Window, part10: bool) -> tuple[dict[str, Any], str | None, str | None, bool] | str:
    try:
        meta: dict[int, tuple[Any, bytes]] = {}
        pos = 132 if part10 else 0
        if win.buf[pos : pos + 2] == b"\x02\x00":  # file meta group: always explicit VR little endian
            pos = _walk(win, pos, True, 0x0002FFFF, _META_WANTED, meta)
        syntax = _ascii(meta[0x00020010][1]) if 0x00020010 in meta else None
        if syntax in _UNSUPPORTED_SYNTAXES:
            raise _Fallback(f"transfer syntax {syntax}")
        if syntax is None:
            win.ensure(pos, 8)
            off = pos - win.base
            explicit = b"AA" <= win.buf[off + 4 : off + 6] <= b"ZZ"
        else:
            explicit = syntax != _IMPLICIT_LE
        found: dict[int, tuple[Any, bytes]] = {}
        _walk(win, pos, explicit, _LAST, _WANTED, found)
    except _Truncated as exc:
        return str(exc)
    charset = _ascii(found[0x00080005][1]) if 0x00080005 in found else None
    values: dict[str, Any] = dict.fromkeys(ALL_FIELDS)
    decoded = _DECODED
    if len(decoded) > _DECODED_MAX:
        decoded.clear()
    for tag, (_, raw) in found.items():
        keyword = _KEYWORD_OF.get(tag)
        if keyword is not None:
            key = (tag, raw, charset)
            value = decoded.get(key, _MISSING)
            if value is _MISSING:
                try:
                    value = _decode(tag, raw, charset)
                except Exception:  # one malformed value must not lose the file
                    value = None
                decoded[key] = value
            values[keyword] = value
    media_class = _ascii(meta[0x00020002][1]) if 0x00020002 in meta else None
    if not values["SOPInstanceUID"] and 0x00020003 in meta:
        values["SOPInstanceUID"] = _ascii(meta[0x00020003][1])
    is_dir = media_class == _DICOMDIR_CLASS
    return values, media_class, syntax, is_dir


def open_local(path: str) -> IO[bytes]:
    """Open a local (or mapped-drive, or UNC) file read-only, buffered so a header costs one or two reads."""
    return open(path, "rb", buffering=16384)
