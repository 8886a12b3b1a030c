"""The fast path of a header read: walk the element headers ourselves and hand only the kept values to
pydicom for decoding.

Values we do not keep are skipped with a seek (a 3 MiB private blob costs no read), and the walk stops at
the first tag after InstanceNumber (0020,0013). Anything unusual (big endian, deflate, a sequence we keep,
an undefined length on a kept element) raises `Fallback`, and the caller reads the file with pydicom
(`fallback.py`), which is also the reference the tests compare this against."""

from __future__ import annotations

import struct
import warnings
from typing import IO, Any

from pacsindex.dicom.fallback import LAST_TAG, SEQUENCES, TAGS, Values
from pacsindex.dicom.record import ALL_FIELDS, FIELD_TABLE, int_value, text_value

__all__ = ["EXPLICIT_VRS", "FIRST_READ", "Fallback", "Window", "fast_values"]

FIRST_READ = 16384
_CHUNK = 16384
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
EXPLICIT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW "
    b"PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
_WANTED = frozenset(TAGS) | {0x00080005} | SEQUENCES
_META_WANTED = frozenset({0x00020002, 0x00020003, 0x00020010})
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
_IMPLICIT_LE = "1.2.840.10008.1.2"
_UNSUPPORTED_SYNTAXES = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}  # deflate, big endian: pydicom
_KEYWORD_OF = {t: k for k, t, _ in FIELD_TABLE}
_VR_OF = {t: vr for _, t, vr in FIELD_TABLE}
_TEXT_VRS = {"LO", "SH", "UC"}
_unpack_tag = struct.Struct("<HH").unpack_from
_unpack_u16 = struct.Struct("<H").unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from


class Fallback(Exception):
    """The fast path met something it leaves to pydicom."""


class _Truncated(Exception):
    pass


class Window:
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
    win: Window,
    pos: int,
    explicit: bool,
    stop: int,
    wanted: frozenset[int],
    found: dict[int, tuple[Any, bytes]],
) -> int:
    """Walk top-level elements from `pos` until a tag past `stop` (returns its position) or the end of the
    file (returns the size). Values of `wanted` tags go into `found` as (VR, bytes)."""
    size = win.size
    while True:
        if pos >= size:
            if pos > size:
                raise _Truncated(f"truncated header: an element ends at byte {pos} of a {size}-byte file")
            return pos
        win.ensure(pos, 12)
        buf = win.buf
        off = pos - win.base
        if len(buf) - off < 8:
            raise _Truncated(f"truncated header: {size - pos} stray bytes at the end of the file")
        group, elem = _unpack_tag(buf, off)
        tag = group << 16 | elem
        if tag > stop:
            return pos
        vr: bytes | None
        if explicit:
            vr = buf[off + 4 : off + 6]
            if vr in _LONG_VRS:
                if len(buf) - off < 12:
                    raise _Truncated("truncated header: an element header is cut short")
                (length,) = _unpack_u32(buf, off + 8)
                hdr = 12
            elif b"AA" <= vr <= b"ZZ":
                (length,) = _unpack_u16(buf, off + 6)
                hdr = 8
            else:
                raise Fallback("not an explicit VR")
        else:
            vr = None
            (length,) = _unpack_u32(buf, off + 4)
            hdr = 8
        vpos = pos + hdr
        if length == 0xFFFFFFFF:
            if tag in wanted:
                raise Fallback("undefined length on a kept element")
            # A sequence (or UN holding one, which is implicit VR inside) of undefined length: skip it.
            pos = _skip_items(win, vpos, explicit and vr != b"UN")
            continue
        if tag in wanted:
            if tag in SEQUENCES:
                raise Fallback("a sequence we keep")
            found[tag] = (vr, win.take(vpos, length))
        pos = vpos + length


def _skip_items(win: Window, pos: int, explicit: bool) -> int:
    """Skip the items of an undefined-length sequence; return the position after its delimiter."""
    while True:
        head = win.take(pos, 8)
        group, elem = _unpack_tag(head)
        (length,) = _unpack_u32(head, 4)
        tag = group << 16 | elem
        if tag == 0xFFFEE0DD:  # sequence delimiter
            return pos + 8
        if tag != 0xFFFEE000:
            raise Fallback("unexpected element inside a sequence")
        if length != 0xFFFFFFFF:
            pos += 8 + length
            continue
        # An item of undefined length: walk its elements up to the item delimiter.
        pos = _walk(win, pos + 8, explicit, 0xFFFEE00C, frozenset(), {})
        head = win.take(pos, 8)
        if _unpack_tag(head) != (0xFFFE, 0xE00D):
            raise Fallback("item without delimiter")
        pos += 8


def _ascii(value: bytes) -> str | None:
    text = value.decode("ascii", "replace").strip(" \x00")
    return text or None


def _decode(tag: int, value: bytes, charset: str | None, notes: list[str]) -> Any:
    vr = _VR_OF[tag]
    if vr in ("UI", "DA", "TM", "CS", "AS", "DS", "DT", "AE"):
        return _ascii(value)
    if vr == "IS":
        return int_value(_ascii(value))
    if not value:
        return None
    if value.isascii() and b"\x1b" not in value:
        return text_value(value.decode("ascii", "replace"))
    import pydicom.values
    from pydicom.charset import convert_encodings

    # Rare (text outside ASCII): pydicom's warnings about the character set become the file's note.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encodings = convert_encodings([c.strip() for c in charset.split("\\")] if charset else None)
        if vr == "PN":
            text = text_value(pydicom.values.convert_PN(value, encodings))
        elif vr in _TEXT_VRS:
            text = text_value(pydicom.values.convert_text(value, encodings, vr))
        else:
            text = pydicom.values.convert_single_string(value, encodings, vr)
    for warning in caught:
        message = " ".join(str(warning.message).split())
        if message not in notes:
            notes.append(message)
    return text_value(text)


_KNOWN_CHARSETS = {"ISO_IR 100", "ISO_IR 192", "ISO_IR 6"}  # grows with every character set found known


def _check_charset(charset: str, notes: list[str]) -> None:
    """pydicom warns about a SpecificCharacterSet it does not know even when every value is ASCII (and the
    fast path never asks it to decode): keep that as a note too."""
    from pydicom.charset import python_encoding

    unknown = [c for c in (t.strip() for t in charset.split("\\")) if c and c not in python_encoding]
    if unknown:
        notes.append(f"unknown character set {', '.join(unknown)}: text read with the default instead")
    else:
        _KNOWN_CHARSETS.add(charset)


def fast_values(win: Window, part10: bool, notes: list[str]) -> Values | str:
    """The kept values, or a reason the file is truncated. Raises Fallback for what pydicom should read."""
    try:
        meta: dict[int, tuple[Any, bytes]] = {}
        pos = 132 if part10 else 0
        if win.buf[pos : pos + 2] == b"\x02\x00":  # file meta group: always explicit VR little endian
            pos = _walk(win, pos, True, 0x0002FFFF, _META_WANTED, meta)
            if pos >= win.size:
                return "truncated header: no data set after the file meta information"
        syntax = _ascii(meta[0x00020010][1]) if 0x00020010 in meta else None
        if syntax in _UNSUPPORTED_SYNTAXES:
            raise Fallback(f"transfer syntax {syntax}")
        if syntax is None:
            # No transfer syntax: explicit VR when the first element carries a VR. An implicit length of
            # 66-90 bytes has an ASCII capital for its first byte, so both bytes must name a VR.
            win.ensure(pos, 8)
            off = pos - win.base
            explicit = win.buf[off + 4 : off + 6] in EXPLICIT_VRS
            if win.buf[off] == 0 and win.buf[off + 1] != 0:
                raise Fallback("a big endian dataset without file meta")  # group 0x0008 as 00 08
        else:
            explicit = syntax != _IMPLICIT_LE
        found: dict[int, tuple[Any, bytes]] = {}
        _walk(win, pos, explicit, LAST_TAG, _WANTED, found)
    except _Truncated as exc:
        return str(exc)
    charset = _ascii(found[0x00080005][1]) if 0x00080005 in found else None
    if charset is not None and charset not in _KNOWN_CHARSETS:
        _check_charset(charset, notes)
    values: dict[str, Any] = dict.fromkeys(ALL_FIELDS)
    for tag, (_, raw) in found.items():
        keyword = _KEYWORD_OF.get(tag)
        if keyword is not None:
            try:
                values[keyword] = _decode(tag, raw, charset, notes)
            except Exception as exc:  # one malformed value must not lose the file
                values[keyword] = None
                notes.append(f"{keyword} could not be decoded ({type(exc).__name__}); kept empty")
    media_class = _ascii(meta[0x00020002][1]) if 0x00020002 in meta else None
    if not values["SOPInstanceUID"] and 0x00020003 in meta:
        values["SOPInstanceUID"] = _ascii(meta[0x00020003][1])
    is_dir = media_class == _DICOMDIR_CLASS
    return values, media_class, syntax, is_dir
