"""Bulk data (PS3.18 8.6 and F.2.6): BulkDataURIs in WADO-RS metadata in place of large binary values, and
the bulk data those URIs name, read from the file when asked for.

A binary value (OB, OW, OD, OF, OL, OV, UN) over `BULK_LIMIT` bytes, and the pixel data, appear in metadata
as `{"vr": ..., "BulkDataURI": "<instance>/bulkdata/<path>"}`, where the path is the tag ("7FE00010") or,
inside sequences, tag/item/tag ("00540016/0/00281201"), so a client fetches only the values it wants. The
pixel data goes out as stored: native pixels in one application/octet-stream part, encapsulated pixels as one
part per frame in their compressed media type (as for frames). Other values are read with pydicom from the
header (they sit before the pixel data) and sent in one part.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import IO, Any

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

from pacsindex.dicomweb.accept import OCTET, frame_media, media_ranges
from pacsindex.dicomweb.frames import PIXEL_DATA, FrameBody, locate, read_exact
from pacsindex.errors import DicomReadError, FileChanged, InvalidQuery, NotAcceptable, NotFound, SourceError
from pacsindex.sources.readers import CHUNK, Readers

__all__ = ["BULK_LIMIT", "BulkBody", "add_bulk_uris", "open_bulk", "parse_bulk_path"]

BULK_LIMIT = 1024
_PATH = re.compile(r"^[0-9A-Fa-f]{8}(/\d{1,6}/[0-9A-Fa-f]{8}){0,8}$")


def add_bulk_uris(item: dict[str, Any], instance_url: str, prefix: str = "") -> None:
    """Point every BulkDataURI that pydicom left in `item` (a DICOM JSON object) at this instance's bulk
    data route, with the element's path."""
    for key, value in item.items():
        if "BulkDataURI" in value:
            value["BulkDataURI"] = f"{instance_url}/bulkdata/{prefix}{key}"
        elif value.get("vr") == "SQ":
            for i, child in enumerate(value.get("Value") or ()):
                add_bulk_uris(child, instance_url, f"{prefix}{key}/{i}/")


def parse_bulk_path(path: str) -> list[int | str]:
    """Tags and item numbers of a bulk data path like "7FE00010" or "00540016/0/00281201"."""
    if not _PATH.match(path):
        raise InvalidQuery("a bulk data path is a tag like 7FE00010, or tag/item/tag inside sequences")
    return [int(p, 16) if len(p) == 8 else int(p) for p in path.split("/")]


def _wanted_multipart(accept: str | None) -> bool:
    ranges = media_ranges(accept)
    if not ranges:
        return True
    for media, params in ranges:
        if media in ("*/*", "multipart/*") or (
            media == "multipart/related" and params.get("type", OCTET) in (OCTET, "application/*", "*/*")
        ):
            return True
        if media in (OCTET, "application/*"):
            return False
    raise NotAcceptable(f'pacsindex sends bulk data as multipart/related; type="{OCTET}", not {accept}')


class BulkBody:
    """One bulk value as a multipart/related body with one part (or bare), made while it is sent."""

    def __init__(self, chunks: Iterator[bytes], *, multipart: bool, length: int) -> None:
        self.chunks, self.multipart = chunks, multipart
        self.boundary = secrets.token_hex(16)
        head, tail = self._head(), self._tail()
        self.length = len(head) + length + len(tail)

    def _head(self) -> bytes:
        return f"--{self.boundary}\r\nContent-Type: {OCTET}\r\n\r\n".encode() if self.multipart else b""

    def _tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode() if self.multipart else b""

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{OCTET}"; boundary={self.boundary}' if self.multipart else OCTET

    def __iter__(self) -> Iterator[bytes]:
        yield self._head()
        yield from self.chunks
        yield self._tail()


def _value(fh: IO[bytes], path: list[int | str], what: str) -> bytes:
    try:
        ds: Any = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
        for i, step in enumerate(path):
            if i % 2:
                ds = ds[step]
            else:
                elem = ds[Tag(step)]
                ds = elem.value
    except (KeyError, IndexError, TypeError) as exc:
        raise NotFound(f"{what} has no bulk data at that path") from exc
    except (InvalidDicomError, ValueError, AttributeError, EOFError) as exc:
        raise DicomReadError(what, f"its header cannot be read ({exc})") from exc
    if not isinstance(ds, bytes | bytearray):
        raise NotFound(f"{what}: the element at that path is not a binary value")
    return bytes(ds)


def open_bulk(
    path: str, readers: Readers, bulk_path: str, accept: str | None, what: str
) -> BulkBody | FrameBody:
    """The bulk value at `bulk_path` of the instance file at `path`, ready to send."""
    steps = parse_bulk_path(bulk_path)
    try:
        fh = readers(path).open(path)
    except (OSError, SourceError) as exc:
        raise NotFound(f"{what} is indexed but its file cannot be read now") from exc
    try:
        if steps == [PIXEL_DATA]:
            pixels = locate(fh, what)
            if pixels.encapsulated:
                numbers = range(1, pixels.frames + 1)
                multipart, part = frame_media(accept, pixels.TransferSyntaxUID, single_ok=pixels.frames == 1)
                return FrameBody(fh, pixels, list(numbers), part, multipart=multipart, what=what)
            multipart = _wanted_multipart(accept)
            assert pixels.length is not None
            fh.seek(pixels.offset)
            return BulkBody(_closing(fh, pixels.length, what), multipart=multipart, length=pixels.length)
        value = _value(fh, steps, what)
        fh.close()
        return BulkBody(iter([value]), multipart=_wanted_multipart(accept), length=len(value))
    except BaseException:
        fh.close()
        raise


def _closing(fh: IO[bytes], length: int, what: str) -> Iterator[bytes]:
    with fh:
        try:
            yield from read_exact(fh, length, what, CHUNK)
        except OSError as exc:
            raise FileChanged(f"{what} could not be read while sent") from exc
