"""What one series of the synthetic CT archive (bench/ct_tree.py) holds: the per-series facts, and the GE
private elements a GE CT scanner writes, with the few whose values change per slice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CtSeries:
    """Everything that is the same for all slices of one series."""

    patient: int
    study: int
    series: int  # global series index
    number: int  # SeriesNumber within the study
    files: int
    rows: int
    columns: int
    thickness: float
    kernel: str
    description: str
    study_uid: str
    series_uid: str
    frame_uid: str
    study_date: str
    study_time: str
    z_start: float
    pixel_spacing: float


# GE private elements: creator per group, then (element offset, VR, value) in ascending offset. A value may be
# a callable of (series, slice index) for the few that change per slice (marked by PER_SLICE).
Value = Any
CREATORS = {
    0x0009: "GEMS_IDEN_01",
    0x0019: "GEMS_ACQU_01",
    0x0021: "GEMS_RELA_01",
    0x0027: "GEMS_IMAG_01",
    0x0043: "GEMS_PARM_01",
}


def slice_z(s: CtSeries, k: int) -> float:
    return round(s.z_start - k * s.thickness, 3)


PER_SLICE: set[tuple[int, int]] = {(0x0019, 0x24), (0x0027, 0x41), (0x0027, 0x44)}
PRIVATE: dict[int, list[tuple[int, str, Value]]] = {
    0x0009: [
        (0x01, "LO", "GE_GENESIS_FF"),
        (0x02, "SH", "CT01"),
        (0x04, "SH", "LightSpeed VCT"),
        (0x27, "SL", lambda s, k: 1_580_000_000 + s.series * 3600),
        (0x30, "SH", "CT99"),
        (0x31, "SH", "MOB1"),
        (0xE2, "LT", "ORIGINAL\\PRIMARY\\AXIAL"),
        (0xE3, "UI", "1.2.840.113619.1.22.11.56"),
        (0xE6, "SH", "LightSpeedverrel"),
        (0xE7, "UL", lambda s, k: 2_861_431_008 + s.study),
        (0xE8, "SH", "CT01"),
        (0xE9, "SL", lambda s, k: 1_580_000_100 + s.series * 3600),
    ],
    0x0019: [
        (0x02, "SL", 888),
        (0x03, "DS", "0.0"),
        (0x04, "DS", "1.0"),
        (0x0F, "DS", "1099.3"),
        (0x11, "SS", 2),
        (0x18, "LO", "S"),
        (0x19, "DS", lambda s, k: f"{s.z_start:.3f}"),
        (0x1A, "LO", "I"),
        (0x1B, "DS", lambda s, k: f"{slice_z(s, s.files - 1):.3f}"),
        (0x1E, "DS", "500.0"),
        (0x23, "DS", "39.375"),
        (0x24, "DS", lambda s, k: f"{0.25 + k * 0.127:.6f}"),
        (0x25, "SS", 1),
        (0x26, "SL", 1),
        (0x27, "DS", "0.5"),
        (0x2A, "DS", "0.0"),
        (0x2B, "DS", "0.0"),
        (0x2C, "SL", 1480),
        (0x2E, "DS", "245.0"),
        (0x2F, "DS", "2460.0"),
        (0x39, "SS", 16),
        (0x40, "SS", 0),
        (0x41, "SS", 0),
        (0x42, "SS", 0),
        (0x43, "SS", 0),
        (0x44, "DS", "0.0"),
        (0x47, "SS", 1),
        (0x4A, "SS", 2),
        (0x4B, "SL", 0),
        (0x52, "SS", 0),
        (0x57, "SS", 0),
        (0x58, "SS", 0),
        (0x5E, "SL", 888),
        (0x5F, "SL", 1),
        (0x60, "SL", 0),
        (0x61, "SL", 984),
        (0x62, "SL", 1),
        (0x6A, "SS", 1),
        (0x6B, "SS", 888),
        (0x70, "SS", 0),
        (0x71, "SS", 0),
        (0x72, "DS", "12.46"),
        (0x73, "DS", "3287.4"),
        (0x74, "DS", "3345.0"),
        (0x75, "DS", "3290.1"),
        (0x76, "DS", "3351.0"),
        (0x7F, "DS", "0.0"),
        (0x81, "SS", 1),
        (0xDA, "SS", 0),
        (0xDB, "DS", "0.0"),
        (0xDC, "SS", 0),
        (0xDD, "SS", 1),
        (0xDE, "DS", "0.0"),
    ],
    0x0021: [
        (0x03, "SS", 1),
        (0x05, "SH", "03"),
        (0x07, "UL", lambda s, k: 1_912_245_771 + s.series),
        (0x18, "SH", "LightSpeedverrel"),
        (0x19, "UL", lambda s, k: 3_011_554_912 + s.series),
        (0x20, "DS", lambda s, k: f"{s.z_start:.3f}"),
        (0x35, "SS", 1),
        (0x36, "SS", 1),
        (0x37, "SS", 1),
        (0x4A, "LO", "SCOUT"),
        (0x4F, "SS", lambda s, k: min(s.files, 32767)),
        (0x50, "SS", 0),
        (0x81, "DS", "0.0"),
        (0x82, "DS", "0.0"),
        (0x83, "DS", "400.0"),
        (0x84, "DS", "40.0"),
        (0x90, "SS", 0),
        (0x91, "SS", 0),
        (0x92, "FL", 0.0),
        (0x93, "FL", 0.0),
    ],
    0x0027: [
        (0x06, "SL", 0),
        (0x10, "SS", 0),
        (0x1C, "SL", 0),
        (0x1D, "SS", 0),
        (0x1E, "SL", 0),
        (0x1F, "SL", 0),
        (0x20, "SS", 0),
        (0x30, "SH", "GE0"),
        (0x35, "SS", 2),
        (0x40, "SH", "I"),
        (0x41, "FL", lambda s, k: slice_z(s, k)),
        (0x42, "FL", 0.0),
        (0x43, "FL", 0.0),
        (0x44, "FL", lambda s, k: slice_z(s, k)),
        (0x45, "FL", 0.0),
        (0x46, "FL", 0.0),
        (0x47, "FL", 1.0),
        (0x48, "FL", -250.0),
        (0x49, "FL", -250.0),
        (0x4A, "FL", 0.0),
        (0x4B, "FL", -250.0),
        (0x4C, "FL", 250.0),
        (0x4D, "FL", 0.0),
        (0x50, "FL", lambda s, k: s.z_start),
        (0x51, "FL", lambda s, k: slice_z(s, s.files - 1)),
        (0x52, "SH", "L"),
        (0x53, "SH", "P"),
        (0x54, "SH", "S"),
        (0x55, "SH", "I"),
        (0x60, "FL", lambda s, k: float(s.columns)),
        (0x61, "FL", lambda s, k: float(s.rows)),
        (0x62, "FL", 1.0),
    ],
    0x0043: [
        (0x10, "US", 400),
        (0x11, "US", 984),
        (0x12, "SS", [25, 0, 0]),
        (0x13, "SS", [0, 0, 0, 0, 0]),
        (0x14, "SS", [0, 0, 0]),
        (0x15, "SS", [0, 0, 0]),
        (0x16, "SS", [0, 0, 0, 0, 0]),
        (0x17, "DS", "1.0"),
        (0x18, "DS", ["0.0", "0.0", "0.0"]),
        (0x19, "SS", 1),
        (0x1A, "SL", 1),
        (0x1B, "SS", 0),
        (0x1C, "SS", 0),
        (0x1D, "SS", 40),
        (0x1E, "DS", "0.0"),
        (0x1F, "SL", 0),
        (0x20, "DS", "0.0"),
        (0x21, "SS", 0),
        (0x25, "SS", [0, 0, 0, 0, 0, 0]),
        (0x26, "US", [0, 0, 0, 0, 0, 0]),
        (0x27, "SH", "0.984:1"),
        (0x28, "OB", b"\x01\x00\x00\x00\x00\x00\x00\x00"),
        (0x2B, "SS", [0, 0, 0, 0]),
        (0x31, "DS", ["0.0", "-22.5"]),
        (0x40, "FL", [0.0, 0.0, 0.0, 0.0]),
        (0x41, "FL", [0.0, 0.0, 0.0, 0.0]),
        (0x42, "SL", [0, 0, 0, 0]),
        (0x43, "SL", [0, 0, 0, 0]),
        (0x44, "SL", [0, 0, 0, 0]),
        (0x45, "SL", [0, 0, 0, 0]),
        (0x46, "SL", [0, 0, 0, 0]),
        (0x47, "SL", [0, 0, 0, 0]),
        (0x48, "SL", [0, 0, 0, 0]),
        (0x49, "SL", [0, 0, 0, 0]),
        (0x4A, "SS", [0, 0, 0, 0]),
        (0x4B, "SL", [0, 0, 0, 0]),
        (0x4C, "SS", [0, 0, 0, 0]),
        (0x4D, "FL", [0.0, 0.0, 0.0, 0.0]),
        (0x4E, "FL", [0.0, 0.0, 0.0, 0.0]),
        (0x61, "UI", lambda s, k: s.study_uid),
        (0x62, "SH", lambda s, k: f"{4711 + s.study}"),
        (0x63, "SH", lambda s, k: f"S{s.series + 1}"),
        (0x64, "CS", "NONE"),
        (0x6E, "SH", "SMART mA"),
    ],
}


def private_plan(count: int) -> list[tuple[int, int, str, Value]]:
    """The first `count` private elements, taken round-robin over the groups so all five stay populated."""
    groups = sorted(PRIVATE)
    plan: list[tuple[int, int, str, Value]] = []
    depth = max(len(v) for v in PRIVATE.values())
    for i in range(depth):
        for group in groups:
            if i < len(PRIVATE[group]):
                offset, vr, value = PRIVATE[group][i]
                plan.append((group, offset, vr, value))
    if count > len(plan):
        # More than the catalogue holds: fill free offsets with short counters, as a vendor's "slop" fields.
        used = {(g, o) for g, o, _, _ in plan}
        free = ((g, o) for o in range(0x01, 0x100) for g in groups if (g, o) not in used)
        for (group, offset), _ in zip(free, range(count - len(plan)), strict=False):
            plan.append((group, offset, "SS", offset))
    return plan[:count]


def resolve(value: Value, s: CtSeries, k: int) -> Any:
    return value(s, k) if callable(value) else value
