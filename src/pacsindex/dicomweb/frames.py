"""WADO-RS frames (PS3.18 10.4 "Retrieve Frames"): where an instance file's pixel data lies and the bytes of
the frames a client asks for, exactly as stored (no decoding, no transcoding).

Only what is needed is read: the header up to the pixel data (pydicom, stopping before it), then, for
native pixels, the asked frames' byte ranges; for encapsulated pixels (JPEG, JPEG-LS, JPEG 2000, RLE ...)
the item headers and the asked frames' fragments, found with pydicom's encapsulation helpers (Extended
Offset Table, Basic Offset Table, or one frame per fragment). The file stays open while the frames are
sent and is closed whatever stops the stream.
"""

from __future__ import annotations

import logging
import secrets
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import pydicom
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError

from pacsindex.dicomweb.accept import frame_media, pixel_media
from pacsindex.dicomweb.part10 import syntax_of
from pacsindex.errors import DicomReadError, FileChanged, InvalidQuery, NotAcceptable, NotFound, SourceError
from pacsindex.sources.readers import CHUNK, Readers

__all__ = [
    "PIXEL_DATA",
    "FrameBody",
    "PixelData",
    "frame_bytes",
    "locate",
    "open_frames",
    "parse_frame_list",
    "read_exact",
]

log = logging.getLogger(__name__)

PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_MAX_FRAMES_ASKED = 10_000


@dataclass(frozen=True, slots=True)
class PixelData:
    """Where the pixel data value of a file is and how its frames are laid out."""

    offset: int  # of the value, in the file
    length: int | None  # None: encapsulated (undefined length)
    TransferSyntaxUID: str
    frames: int
    frame_size: int  # bytes per native frame
    little_endian: bool
    extended_offsets: tuple[bytes, bytes] | None = None

    @property
    def encapsulated(self) -> bool:
        return self.length is None


def parse_frame_list(text: str) -> list[int]:
    """Frame numbers from a path segment like "1" or "1,3,5" (1-based, in the order asked)."""
    numbers = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise InvalidQuery(f"frame numbers are whole numbers from 1, separated by commas, not {text!r}")
        numbers.append(int(item))
    if len(numbers) > _MAX_FRAMES_ASKED:
        raise InvalidQuery(f"at most {_MAX_FRAMES_ASKED} frames per request")
    return numbers


def locate(fh: IO[bytes], what: str) -> PixelData:
    """The pixel data of the open file `fh` (`what` names the instance in errors)."""
    fh.seek(0)
    try:
        ds = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
    except (InvalidDicomError, ValueError, TypeError, AttributeError, KeyError, EOFError) as exc:
        raise DicomReadError(what, f"its header cannot be read ({exc})") from exc
    start = fh.tell()
    syntax = str(ds.file_meta.get("TransferSyntaxUID") or syntax_of(ds))
    implicit, little = ds.original_encoding
    little = little is not False
    order = "<" if little else ">"
    head = fh.read(12)
    if len(head) < 8 or struct.unpack(f"{order}HH", head[:4]) != (0x7FE0, 0x0010):
        raise NotFound(f"{what} has no pixel data")
    if implicit:
        (length,), offset = struct.unpack(f"{order}L", head[4:8]), start + 8
    else:
        (length,), offset = struct.unpack(f"{order}L", head[8:12]), start + 12
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
        rows, columns = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated) * int(ds.get("SamplesPerPixel") or 1)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DicomReadError(what, "Rows, Columns or BitsAllocated missing or not numbers") from exc
    if pixel_media(syntax) is None:
        raise NotAcceptable(f"{what} is in transfer syntax {syntax}, whose frames cannot be sent one by one")
    if length == _UNDEFINED:
        eot = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            eot = (bytes(ds.ExtendedOffsetTable), bytes(ds.ExtendedOffsetTableLengths))
        return PixelData(offset, None, syntax, frames, 0, little, eot)
    frame_bits = rows * columns * bits
    if frame_bits % 8 and frames > 1:
        raise NotAcceptable(f"{what} packs its frames at bit boundaries; send the whole instance instead")
    frame_size = (frame_bits + 7) // 8
    if frame_size * frames > length:
        raise DicomReadError(what, f"its pixel data holds {length} bytes, fewer than {frames} frames need")
    return PixelData(offset, length, syntax, frames, frame_size, little)


def read_exact(fh: IO[bytes], size: int, what: str, chunk: int) -> Iterator[bytes]:
    left = size
    while left:
        data = fh.read(min(chunk, left))
        if not data:
            raise FileChanged(f"{what} ended early while sent")
        left -= len(data)
        yield data


def frame_bytes(
    fh: IO[bytes], pixels: PixelData, number: int, what: str, chunk: int = CHUNK
) -> Iterator[bytes]:
    """The bytes of frame `number` (1-based) as stored."""
    if pixels.encapsulated:
        fh.seek(pixels.offset)
        try:
            yield get_frame(
                fh,
                number - 1,
                number_of_frames=pixels.frames,
                extended_offsets=pixels.extended_offsets,
                endianness="<" if pixels.little_endian else ">",
            )
        except (ValueError, struct.error, EOFError) as exc:
            raise FileChanged(f"frame {number} of {what} cannot be found in its pixel data: {exc}") from exc
        return
    fh.seek(pixels.offset + (number - 1) * pixels.frame_size)
    yield from read_exact(fh, pixels.frame_size, what, chunk)


class FrameBody:
    """Frames of one open instance file as a multipart/related body (or one bare frame), made while it is
    sent; closes the file at the end. Iterate it once."""

    def __init__(
        self,
        fh: IO[bytes],
        pixels: PixelData,
        numbers: Sequence[int],
        part_type: str,
        *,
        multipart: bool,
        what: str,
        chunk: int = CHUNK,
    ) -> None:
        self.fh, self.pixels, self.numbers = fh, pixels, numbers
        self.part_type, self.multipart, self.what, self.chunk = part_type, multipart, what, chunk
        self.boundary = secrets.token_hex(16)

    @property
    def content_type(self) -> str:
        if not self.multipart:
            return self.part_type
        media = self.part_type.split(";")[0]
        return f'multipart/related; type="{media}"; boundary={self.boundary}'

    def __iter__(self) -> Iterator[bytes]:
        with self.fh:
            try:
                for number in self.numbers:
                    if self.multipart:
                        yield f"--{self.boundary}\r\nContent-Type: {self.part_type}\r\n\r\n".encode("ascii")
                    yield from frame_bytes(self.fh, self.pixels, number, self.what, self.chunk)
                    if self.multipart:
                        yield b"\r\n"
            except OSError as exc:
                raise FileChanged(f"{self.what} could not be read while sent") from exc
            if self.multipart:
                yield f"--{self.boundary}--\r\n".encode("ascii")


def open_frames(
    path: str, readers: Readers, numbers: Sequence[int], accept: str | None, what: str
) -> FrameBody:
    """The asked frames of the instance file at `path`, ready to send: NotFound, NotAcceptable or
    DicomReadError before anything is sent when the file, a frame or the asked form is not there."""
    try:
        fh = readers(path).open(path)
    except (OSError, SourceError) as exc:
        raise NotFound(f"{what} is indexed but its file cannot be read now") from exc
    try:
        pixels = locate(fh, what)
        beyond = [n for n in numbers if n > pixels.frames]
        if beyond:
            raise NotFound(f"{what} has {pixels.frames} frame(s); there is no frame {beyond[0]}")
        multipart, part_type = frame_media(accept, pixels.TransferSyntaxUID, single_ok=len(numbers) == 1)
    except BaseException:
        fh.close()
        raise
    return FrameBody(fh, pixels, numbers, part_type, multipart=multipart, what=what)
