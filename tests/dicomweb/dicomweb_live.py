"""A live pacsindex over a test archive for the DICOMweb tests: indexed, served on a real socket, with an
API token an admin made; and the archive files these tests need (multi-frame native and encapsulated)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from argon2 import PasswordHasher
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, encapsulate_extended, itemize_fragment, itemize_frame
from pydicom.uid import RLELossless, generate_uid

from conftest import make_dataset, write_dicom
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer


@dataclass
class LiveDicomWeb:
    url: str
    token: str
    app: Any

    @property
    def dicomweb(self) -> str:
        return self.url + "/dicom-web"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def serve(base: Path, archive: Path, **settings: Any) -> Iterator[LiveDicomWeb]:
    """Index `archive` and serve it; `settings` override Settings fields (e.g. cors_origins)."""
    config = Settings(db=base / "pacsindex.db", workers=1, **settings)
    run_index(config.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    app = create_app(config, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    _, token = app.state.apitokens.create("viewer", "boss")
    with ThreadedServer(app, config) as server:
        yield LiveDicomWeb(server.url, token, app)


def ramp_frames(frames: int, rows: int, *, seed: int = 0) -> np.ndarray:
    """`frames` 16-bit monochrome frames, each different and varying across the image."""
    y, x = np.mgrid[0:rows, 0:rows]
    return np.stack([((x * 37 + y * 11 + 500 * f + seed) % 4096) for f in range(frames)]).astype(np.uint16)


def multiframe(frames: int = 3, rows: int = 16, **fields: Any) -> pydicom.Dataset:
    ds = make_dataset(rows=rows, **fields)
    pixels = ramp_frames(frames, rows)
    ds.NumberOfFrames = frames
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = pixels.tobytes()
    return ds


def write_native(path: Path, **fields: Any) -> Path:
    return write_dicom(path, multiframe(**fields))


def write_rle(path: Path, *, frames: int = 4, rows: int = 32, bot: bool = True, **fields: Any) -> Path:
    """RLE Lossless, encoded by pydicom, with or without a Basic Offset Table."""
    ds = multiframe(frames=frames, rows=rows, **fields)
    write_dicom(path, ds)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless, ramp_frames(frames, rows), encoding_plugin="pydicom")
    if not bot:
        encoded = [bytes(f) for f in pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=frames)]
        ds.PixelData = encapsulate(encoded, has_bot=False)
    ds.save_as(path, enforce_file_format=True)
    return path


def jpeg2000_codestreams() -> list[bytes]:
    """Real JPEG 2000 codestreams from the files pydicom ships (the server sends them as they are)."""
    out = []
    for name in ("MR_small_jp2klossless.dcm", "JPEG2000.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        out.append(next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1)))
    return out


def write_jpeg2000(path: Path, *, layout: str = "bot", **fields: Any) -> tuple[Path, list[bytes]]:
    """A 3-frame JPEG 2000 Lossless instance; layout "bot" (the middle frame in two fragments), "eot"
    (an Extended Offset Table) or "none" (no offset table, one fragment per frame)."""
    a, b = jpeg2000_codestreams()
    frames = [a, b, a[:-2] + b"\xff\xd9"]  # three different byte strings, each ending like a codestream
    ds = make_dataset(rows=64, **fields)
    ds.NumberOfFrames = 3
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    if layout == "bot":
        items = [
            itemize_fragment(frames[0]),
            b"".join(itemize_frame(frames[1], 2)),
            itemize_fragment(frames[2]),
        ]
        offsets, pos = [], 0
        for item in items:
            offsets.append(pos)
            pos += len(item)
        bot = b"\xfe\xff\x00\xe0" + (4 * len(offsets)).to_bytes(4, "little")
        bot += b"".join(o.to_bytes(4, "little") for o in offsets)
        ds.PixelData = bot + b"".join(items)
    elif layout == "eot":
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(frames)
    else:
        ds.PixelData = encapsulate(frames, has_bot=False)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.preamble = b"\x00" * 128
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path, frames


def fresh_uid() -> str:
    return str(generate_uid())


def multipart_parts(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """(Content-Type, bytes) of each part of a multipart/related body, checking its framing."""
    boundary = content_type.split("boundary=")[1].encode()
    assert body.startswith(b"--" + boundary + b"\r\n") and body.endswith(b"--" + boundary + b"--\r\n")
    out = []
    for part in body[: -len(boundary) - 6].split(b"--" + boundary + b"\r\n")[1:]:
        head, _, data = part.partition(b"\r\n\r\n")
        assert head.startswith(b"Content-Type: ") and data.endswith(b"\r\n")
        out.append((head[len(b"Content-Type: ") :].decode(), data[:-2]))
    return out
