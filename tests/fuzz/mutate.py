"""Mutations of real DICOM headers for the fuzz suite: seeds written by pydicom (explicit and implicit VR,
no preamble, a sequence of undefined length, a non-Latin character set, deflate, big endian), and
mutations that aim where header parsers break: element lengths (huge, odd, undefined), VRs, sequence and
item delimiters, truncation, a wrong SpecificCharacterSet, and random bytes."""

from __future__ import annotations

import io
import random
import re
import struct
import tempfile
import zlib
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian

from conftest import make_dataset, write_dicom

VRS = [
    b"AE",
    b"CS",
    b"DA",
    b"LO",
    b"OB",
    b"OW",
    b"PN",
    b"SH",
    b"SQ",
    b"UI",
    b"UN",
    b"UL",
    b"US",
    b"UT",
    b"XX",
]
LENGTHS = [0, 1, 2, 3, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]
CHARSETS = [
    b"ISO_IR 999",
    b"ISO 2022 IR 87\\ISO 2022 IR 159",
    b"\x1b$B",
    b"GB18030",
    b"",
    b"\\\\\\",
    b"ISO_IR 192",
]
_ELEMENT = re.compile(
    rb"[\x00-\x7f][\x00-\xff][\x00-\xff][\x00-\xff](?:AE|AS|AT|CS|DA|DS|DT|FD|FL|IS|LO|LT|OB|OD|OF|OL|OV|OW|PN|SH|SL|SQ|SS|ST|SV|TM|UC|UI|UL|UN|UR|US|UT|UV)"
)


def seeds() -> list[bytes]:
    """Real headers, cut to their first 8 KiB (the pixel data is not what is fuzzed)."""
    with tempfile.TemporaryDirectory() as tmp:
        return _seeds(Path(tmp))


def _seeds(folder: Path) -> list[bytes]:
    out = []
    variants: list[dict[str, object]] = [
        {},
        {"implicit": True},
        {"preamble": False},
        {"charset": "ISO_IR 144", "PatientName": "Иванов^Иван"},
        {"charset": ["", "ISO 2022 IR 87"], "PatientName": "Yamada^Tarou=山田^太郎"},
    ]
    for i, kw in enumerate(variants):
        implicit = bool(kw.pop("implicit", False))
        preamble = bool(kw.pop("preamble", True))
        path = write_dicom(folder / f"seed{i}.dcm", implicit=implicit, preamble=preamble, **kw)  # type: ignore[arg-type]
        out.append(path.read_bytes()[:8192])
    # A sequence of undefined length with items, before the patient module.
    ds = make_dataset()
    item = Dataset()
    item.PatientID = "OTHER-1"
    item.IssuerOfPatientID = "LAB"
    ds.OtherPatientIDsSequence = Sequence([item, item])
    path = write_dicom(folder / "seq.dcm", ds)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"\x10\x00\x02\x10SQ\x00\x00")
    if at >= 0:  # rewrite as undefined length with a delimiter, as many modalities write it
        (length,) = struct.unpack_from("<I", raw, at + 8)
        raw[at + 8 : at + 12] = b"\xff\xff\xff\xff"
        end = at + 12 + length
        raw[end:end] = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    out.append(bytes(raw[:8192]))
    for syntax in (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian):
        ds = make_dataset()
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = syntax
        buf = io.BytesIO()
        ds.save_as(
            buf, enforce_file_format=True, little_endian=syntax != ExplicitVRBigEndian, implicit_vr=False
        )
        out.append(buf.getvalue()[:8192])
    out.append(deflate_bomb(out[0]))
    return out


def deflate_bomb(seed: bytes, size: int = 64 << 20) -> bytes:
    """A deflated data set that inflates to `size` bytes of one private element: 64 MiB from ~64 KiB."""
    meta_end = seed.find(b"\x08\x00")  # the first data set element after the meta group
    meta = bytearray(seed[:meta_end])
    meta = meta.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.1.99")
    body = struct.pack("<HH2sHI", 0x0009, 0x1000, b"OB", 0, size)
    compress = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compress.compress(body) + compress.compress(b"\x00" * size) + compress.flush()
    return bytes(meta) + data


def mutate(data: bytes, rnd: random.Random, steps: int | None = None) -> bytes:
    """`data` with 1 to 4 mutations chosen by `rnd`."""
    buf = bytearray(data)
    offsets = [m.start() for m in _ELEMENT.finditer(bytes(buf))] or [0]
    for _ in range(steps or rnd.randint(1, 4)):
        op = rnd.randrange(9)
        at = rnd.choice(offsets)
        if op == 0 and at + 8 <= len(buf):  # a short length field: odd, zero, too long
            struct.pack_into("<H", buf, at + 6, rnd.choice(LENGTHS) & 0xFFFF)
        elif op == 1 and at + 12 <= len(buf):  # a long length field (OB, SQ, UN, UT ...): huge or undefined
            struct.pack_into("<I", buf, at + 8, rnd.choice(LENGTHS))
        elif op == 2 and at + 6 <= len(buf):  # another, or an unknown, VR
            buf[at + 4 : at + 6] = rnd.choice(VRS)
        elif op == 3:  # truncation anywhere
            del buf[rnd.randrange(len(buf) + 1) :]
        elif op == 4:  # an item or delimiter where none belongs
            pos = rnd.randrange(len(buf) + 1)
            marker = rnd.choice([b"\xfe\xff\x00\xe0", b"\xfe\xff\x0d\xe0", b"\xfe\xff\xdd\xe0"])
            buf[pos:pos] = marker + struct.pack("<I", rnd.choice(LENGTHS))
        elif op == 5:  # a wrong or broken SpecificCharacterSet
            pos = bytes(buf).find(b"\x08\x00\x05\x00CS")
            if pos >= 0 and pos + 8 <= len(buf):
                value = rnd.choice(CHARSETS)
                value += b" " * (len(value) % 2)
                buf[pos + 6 : pos + 8 + (buf[pos + 6] | buf[pos + 7] << 8)] = (
                    struct.pack("<H", len(value)) + value
                )
        elif op == 6 and buf:  # random bytes
            for _ in range(rnd.randint(1, 16)):
                buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        elif op == 7:  # a huge value: an element claiming most of a gigabyte
            pos = rnd.randrange(len(buf) + 1)
            buf[pos:pos] = struct.pack("<HH2sHI", 0x0010, 0x0010, b"UT", 0, 0x3FFFFFFF) + b"A" * rnd.randint(
                0, 64
            )
        else:  # a sequence of undefined length opened and never closed
            pos = rnd.choice(offsets)
            buf[pos:pos] = (
                struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
                + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
            )
    return bytes(buf)
