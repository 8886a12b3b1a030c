"""Byte-level parts of the sample archive (pacsindex.sample.archive): the scanner models and their vendor
private
blocks, and little-endian element encoding byte for byte as pydicom writes it, so a series' common elements
can be encoded once and joined with the few that change per file."""

from __future__ import annotations

import functools
import random
import re
import struct
import sys
from array import array
from bisect import bisect_left

from pydicom._private_dict import private_dictionaries
from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

# Private (group, creator) pairs per scanner family: always some before group 0x0020 and some after.
GE = ((0x0009, "GEMS_IDEN_01"), (0x0019, "GEMS_ACQU_01"), (0x0021, "GEMS_RELA_01"), (0x0043, "GEMS_PARM_01"))
SIEMENS_CT = ((0x0019, "SIEMENS CT VA0  COAD"), (0x0029, "SIEMENS CSA HEADER"))
SIEMENS_MR = ((0x0019, "SIEMENS MR HEADER"), (0x0029, "SIEMENS CSA HEADER"), (0x0051, "SIEMENS MR HEADER"))
PHILIPS_MR = (
    (0x0019, "PHILIPS MR/PART"),
    (0x2001, "Philips Imaging DD 001"),
    (0x2005, "Philips MR Imaging DD 001"),
)
# (modality, Manufacturer, ManufacturerModelName, SoftwareVersions, private pairs)
SCANNERS = (
    ("CT", "GE MEDICAL SYSTEMS", "Revolution CT", "revo_ct_22.1", GE),
    ("CT", "GE MEDICAL SYSTEMS", "LightSpeed VCT", "07MW18.4", GE),
    ("CT", "SIEMENS", "SOMATOM Definition AS", "syngo CT VB20A", SIEMENS_CT),
    ("CT", "TOSHIBA", "Aquilion ONE", "V8.3", ((0x0019, "TOSHIBA_MEC_1.0"), (0x7005, "TOSHIBA_MEC_CT3"))),
    (
        "CT",
        "Philips",
        "Ingenuity CT",
        "4.1.5",
        (
            (0x0009, "SPI-P-GV-CT Release 1"),
            (0x0029, "SPI-P-GV-CT Release 1"),
            (0x2001, "Philips Imaging DD 001"),
        ),
    ),
    ("MR", "SIEMENS", "MAGNETOM Aera", "syngo MR E11", SIEMENS_MR),
    ("MR", "SIEMENS", "MAGNETOM Skyra", "syngo MR XA30", SIEMENS_MR),
    ("MR", "GE MEDICAL SYSTEMS", "SIGNA Explorer", "DV26.0_R03", GE),
    ("MR", "Philips Medical Systems", "Ingenia", "5.7.1", PHILIPS_MR),
    ("CR", "Agfa", "CR 85-X", "NX 3.0.9300", ((0x0019, "AGFA"), (0x0071, "AGFA-AG_HPState"))),
    ("CR", "FUJIFILM Corporation", "FCR CAPSULA XL II", "A08", ((0x0009, "FDMS 1.0"), (0x0025, "FDMS 1.0"))),
    (
        "CR",
        "Philips Medical Systems",
        "DigitalDiagnost",
        "4.3.2",
        ((0x0019, "SPI-P-Private-DiDi Release 1"), (0x200B, "Philips RAD Imaging DD 001")),
    ),
    ("US", "GE Healthcare", "LOGIQ E10", "R3.1.2", ((0x0009, "GEMS_IDEN_01"), (0x0043, "GEMS_PARM_01"))),
    (
        "US",
        "Philips Medical Systems",
        "EPIQ 7",
        "7.0.5",
        ((0x0019, "SPI-P Release 1"), (0x200D, "Philips US Imaging DD 033")),
    ),
    ("US", "SIEMENS", "ACUSON S2000", "VE10", ((0x0009, "ACUSON"), (0x0029, "SIEMENS CSA HEADER"))),
)
PRIVATE_WORDS = ("PROTO", "RECON", "FILTER", "SCAN", "COIL", "STD", "BONE", "SOFT", "HELIX", "MODE")
DICT_KEY = re.compile(r"([0-9A-Fa-f]{4})xx([0-9A-Fa-f]{2})")
GENERIC_VRS = ("LO", "DS", "SL", "OB")
VALUE_VRS = frozenset(
    {"LO", "SH", "CS", "LT", "ST", "DS", "IS", "SL", "SS", "UL", "US", "FL", "FD", "OB", "OW", "UN"}
)
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
PACK = {
    vr: struct.Struct(fmt)
    for vr, fmt in (("US", "<H"), ("SS", "<h"), ("UL", "<L"), ("SL", "<l"), ("FL", "<f"), ("FD", "<d"))
}
TAG = struct.Struct("<HH")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")

Element = tuple[int, str, object]  # (tag, VR, value) of one element common to a series
PrivateBlock = tuple[int, str, list[tuple[int, str]]]  # (group, creator, [(element offset, VR)])


def encode_runs(
    elements: list[Element], varying: list[int], charset: str | None, implicit: bool
) -> list[bytes]:
    """The series' fixed elements encoded once, as the runs before, between and after the varying tags."""
    runs: list[list[bytes]] = [[] for _ in range(len(varying) + 1)]
    for tag, vr, value in sorted(elements, key=lambda e: e[0]):
        if vr in PACK:
            data = PACK[vr].pack(value)
        elif isinstance(value, bytes):
            data = value
        else:
            text = "\\".join(value) if isinstance(value, (list, tuple)) else str(value)
            if not text.isascii():
                # pydicom encodes text in the declared character set (PN component groups, ISO 2022 ...)
                fp = DicomBytesIO()
                fp.is_little_endian, fp.is_implicit_VR = True, implicit
                write_data_element(fp, DataElement(tag, vr, value), charset or default_encoding)
                runs[bisect_left(varying, tag)].append(fp.getvalue())
                continue
            data = text.encode("ascii")
        runs[bisect_left(varying, tag)].append(encode_element(tag, vr, data, implicit))
    return [b"".join(run) for run in runs]


def encode_element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    """One data element, little endian, padded to even length the way pydicom pads each VR."""
    if len(value) % 2:
        value += b"\x00" if vr in ("UI", "OB", "OW", "UN") else b" "
    head = TAG.pack(tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + U32.pack(len(value)) + value
    if vr in LONG_VRS:
        return head + vr.encode() + b"\x00\x00" + U32.pack(len(value)) + value
    return head + vr.encode() + U16.pack(len(value)) + value


@functools.cache
def standard_tag(keyword: str) -> tuple[int, str]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag, dictionary_VR(tag)


def private_plan(pairs: tuple[tuple[int, str], ...], count: int) -> list[PrivateBlock]:
    """Spread `count` private elements over the scanner's (group, creator) pairs: dictionary entries first."""
    plan = []
    for j, (group, creator) in enumerate(pairs):
        want = count // len(pairs) + (1 if j < count % len(pairs) else 0)
        if not want:
            continue
        known = {}
        for key, (vr, *_rest) in private_dictionaries.get(creator, {}).items():
            # keys look like "0019xx0A"; other shapes (fixed element numbers, "xx" groups) are skipped
            match = DICT_KEY.fullmatch(key)
            if match and int(match[1], 16) == group and vr in VALUE_VRS:
                known[int(match[2], 16)] = vr
        items = sorted(known.items())[:want]
        free = (off for off in range(256) if off not in known)
        items += [(next(free), GENERIC_VRS[k % 4]) for k in range(want - len(items))]
        plan.append((group, creator, sorted(items)))
    return plan


def private_value(rng: random.Random, vr: str) -> object:
    if vr in ("LO", "SH"):
        return f"{rng.choice(PRIVATE_WORDS)} {rng.randint(1, 99)}"
    if vr in ("LT", "ST"):
        return f"{rng.choice(PRIVATE_WORDS)} {rng.choice(PRIVATE_WORDS)} v{rng.randint(1, 9)}"
    if vr == "CS":
        return rng.choice(("YES", "NO", "ON", "OFF", "HELICAL", "NORMAL"))
    if vr == "DS":
        return f"{rng.uniform(-500, 500):.4f}"
    if vr == "IS":
        return str(rng.randrange(100000))
    if vr in ("FL", "FD"):
        return float(rng.randrange(-100000, 100000)) / 8
    if vr in ("OB", "OW", "UN"):
        return rng.randbytes(rng.choice((8, 16, 32, 64)))
    low, high = {
        "SL": (-(2**31), 2**31 - 1),
        "SS": (-(2**15), 2**15 - 1),
        "UL": (0, 2**32 - 1),
        "US": (0, 2**16 - 1),
    }[vr]
    return rng.randint(low, high)


def pixel_pattern(bits: int, rows: int, columns: int) -> bytes:
    """A round phantom with speckle, twice over so a frame can start at any row (slices differ by a shift)."""
    top = (1 << bits) - 1 if bits == 8 else 4095
    values = array("B" if bits == 8 else "H")
    for r in range(rows):
        dy = (2 * r + 1 - rows) / rows
        for c in range(columns):
            dx = (2 * c + 1 - columns) / columns
            d2 = dx * dx + dy * dy
            noise = ((r * 2654435761 + c * 40503) >> 7) & 31
            if bits == 8:
                values.append(min(top, int(180 * (1 - d2)) + 2 * noise) if d2 < 1 else 0)
            else:
                values.append(min(top, 900 + int(300 * (1 - d2)) + noise) if d2 < 0.85 else 24 + noise // 4)
    if sys.byteorder == "big" and bits == 16:
        values.byteswap()
    data = values.tobytes()
    return data + data
