"""A zip written while it is sent, whose every byte position is known before the first is read, so any
byte range of it can be sent on its own (HTTP Range: a broken 4 GiB download resumes where it stopped).

Entries are STORED (DICOM pixel data does not compress) with the CRC-32 and sizes in a data descriptor
after each entry's data (general purpose flag bit 3), so a local header needs nothing that is known only
after reading the file; ZIP64 records wherever a size, an offset or the entry count passes the classic
limits. The sizes come from the caller; an entry's `chunks()` must give exactly `size` bytes (the share
readers raise FileChanged otherwise).

A range that starts past an entry needs that entry's CRC only if the range reaches its data descriptor or
the central directory. CRCs computed while sending are kept in `crcs` (the caller holds it per download),
so a resumed download reads from the NAS only the entry it resumes in and those after it.

All times in the zip are the one `date_time` given (the share's creation), so two downloads of one share
are the same bytes and a resumed download joins up with the first part.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Entry", "ZipLayout", "crc32"]

crc32: Callable[[Any, int], int] = zlib.crc32
try:  # zlib-ng's crc32 is the same function, about 4 times faster (bench/bench_share.py)
    from zlib_ng import zlib_ng

    crc32 = zlib_ng.crc32
except ImportError:  # pragma: no cover - zlib-ng is a dependency, but the zip works without it
    pass

_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_FLAGS = 0x0008  # sizes and CRC in a data descriptor


@dataclass(frozen=True, slots=True)
class Entry:
    """One member: its name in the zip (ASCII, `/`-separated), its exact size, and its bytes on demand."""

    name: str
    size: int
    chunks: Callable[[], Iterator[bytes]]

    @staticmethod
    def of(name: str, data: bytes) -> Entry:
        return Entry(name, len(data), lambda: iter((data,)))


def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    y = min(max(y, 1980), 2107)
    return ((y - 1980) << 9) | (mo << 5) | d, (h << 11) | (mi << 5) | (s // 2)


class ZipLayout:
    """Where everything in the zip lies. `size` is the exact length; `chunks(start, stop, crcs)` gives
    bytes [start, stop)."""

    def __init__(self, entries: Sequence[Entry], date_time: tuple[int, int, int, int, int, int]) -> None:
        self.entries = list(entries)
        self._date, self._time = _dos(date_time)
        self.offsets: list[int] = []
        self._headers: list[bytes] = []
        pos = 0
        for e in self.entries:
            name = e.name.encode("ascii")
            big = e.size >= _MAX32
            extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0) if big else b""
            header = struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                45 if big else 20,
                _FLAGS,
                0,
                self._time,
                self._date,
                0,
                _MAX32 if big else 0,
                _MAX32 if big else 0,
                len(name),
                len(extra),
            )
            self.offsets.append(pos)
            self._headers.append(header + name + extra)
            pos += len(header) + len(name) + len(extra) + e.size + self._descriptor_size(e)
        self.cd_offset = pos
        self.cd_size = len(self._central({i: 0 for i in range(len(self.entries))}))
        self.size = self.cd_offset + self.cd_size

    @staticmethod
    def _descriptor_size(e: Entry) -> int:
        return 24 if e.size >= _MAX32 else 16

    def _descriptor(self, e: Entry, crc: int) -> bytes:
        if e.size >= _MAX32:
            return struct.pack("<IIQQ", 0x08074B50, crc, e.size, e.size)
        return struct.pack("<IIII", 0x08074B50, crc, e.size, e.size)

    def _central(self, crcs: MutableMapping[int, int]) -> bytes:
        parts = []
        for i, e in enumerate(self.entries):
            name = e.name.encode("ascii")
            offset = self.offsets[i]
            big_size, big_offset = e.size >= _MAX32, offset >= _MAX32
            fields = ([e.size, e.size] if big_size else []) + ([offset] if big_offset else [])
            extra = struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields) if fields else b""
            version = 45 if fields else 20
            parts.append(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    version,
                    version,
                    _FLAGS,
                    0,
                    self._time,
                    self._date,
                    crcs[i],
                    _MAX32 if big_size else e.size,
                    _MAX32 if big_size else e.size,
                    len(name),
                    len(extra),
                    0,
                    0,
                    0,
                    0,
                    _MAX32 if big_offset else offset,
                )
                + name
                + extra
            )
        central = b"".join(parts)
        count, cd_offset, cd_size = len(self.entries), self.cd_offset, len(central)
        tail = b""
        if count >= _MAX16 or cd_offset >= _MAX32 or cd_size >= _MAX32:
            zip64_end = cd_offset + cd_size
            tail += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
            tail += struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1)
        tail += struct.pack(
            "<IHHHHIIH",
            0x06054B50,
            0,
            0,
            min(count, _MAX16),
            min(count, _MAX16),
            min(cd_size, _MAX32),
            min(cd_offset, _MAX32),
            0,
        )
        return central + tail

    def chunks(
        self, start: int = 0, stop: int | None = None, crcs: MutableMapping[int, int] | None = None
    ) -> Iterator[bytes]:
        """Bytes [start, stop) of the zip. `crcs` (entry number → CRC-32) is read and filled in."""
        stop = self.size if stop is None else min(stop, self.size)
        crcs = {} if crcs is None else crcs
        if not 0 <= start <= stop:
            raise ValueError("a range must lie inside the zip")
        need_cd = stop > self.cd_offset

        def clip(data: bytes | memoryview, at: int) -> bytes | memoryview | None:
            lo, hi = max(start, at), min(stop, at + len(data))
            return data[lo - at : hi - at] if lo < hi else None

        for i, e in enumerate(self.entries):
            at = self.offsets[i]
            end = self.offsets[i + 1] if i + 1 < len(self.entries) else self.cd_offset
            if at >= stop:
                break
            if end <= start and (i in crcs or not need_cd):
                continue
            header = self._headers[i]
            if (piece := clip(header, at)) is not None:
                yield bytes(piece)
            pos = at + len(header)
            descriptor_at = pos + e.size
            # Past `stop` the data is read only for a CRC that the range needs.
            needs_crc = need_cd or stop > descriptor_at
            crc = 0
            source = e.chunks()
            try:
                for data in source:
                    crc = crc32(data, crc)
                    if (piece := clip(data, pos)) is not None:
                        yield bytes(piece) if len(piece) != len(data) else data
                    pos += len(data)
                    if pos >= stop and not needs_crc:
                        return
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
            if pos != descriptor_at:
                raise AssertionError(f"{e.name} gave {pos - at - len(header)} bytes, not {e.size}")
            crcs[i] = crc
            if (piece := clip(self._descriptor(e, crc), descriptor_at)) is not None:
                yield bytes(piece)
        if need_cd:
            if (piece := clip(self._central(crcs), self.cd_offset)) is not None:
                yield bytes(piece)
