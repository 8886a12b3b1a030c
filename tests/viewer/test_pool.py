"""The renderer: images drawn in worker processes (not this one), at most `at_once` renders under way
however many are asked for, a file that cannot be read gives a placeholder, and shutdown stops the pool."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from pacsindex.sources.files import LocalReader
from pacsindex.sources.readers import Readers
from pacsindex.viewer.pool import Renderer
from pacsindex.viewer.render import RenderRequest


def ct_file(path: Path) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Rows = ds.Columns = 32
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.tile(np.arange(32, dtype=np.uint16) * 100, (32, 1)).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


class GatedReader:
    """Opens files only when let through, and counts how many opens are waiting at once."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.waiting = 0
        self.most = 0

    def open(self, path: str) -> IO[bytes]:
        with self.lock:
            self.waiting += 1
            self.most = max(self.most, self.waiting)
        self.gate.wait(30)
        with self.lock:
            self.waiting -= 1
        return LocalReader().open(path)


def test_at_most_at_once_renders_are_under_way_and_each_is_drawn(tmp_path: Path) -> None:
    path = str(ct_file(tmp_path / "ct.dcm"))
    reader = GatedReader()
    renderer = Renderer(Readers(lambda _p: reader), workers=1, at_once=2)

    async def main() -> list[bytes]:
        tasks = [asyncio.create_task(renderer.render(path, RenderRequest(size=16))) for _ in range(6)]
        while reader.waiting < 2:  # two reads start; the other four wait their turn without a thread
            await asyncio.sleep(0.01)
        for _ in range(20):
            await asyncio.sleep(0.01)
            assert reader.waiting == 2
        reader.gate.set()
        return [r.body for r in await asyncio.gather(*tasks)]

    try:
        bodies = asyncio.run(main())
    finally:
        renderer.shutdown()
    assert reader.most == 2
    for body in bodies:
        grey = np.asarray(Image.open(io.BytesIO(body)))
        assert grey.shape == (16, 16) and grey[8, 0] < grey[8, 15]  # the ramp, dark to light


def test_drawing_happens_in_another_process_and_a_missing_file_is_a_placeholder(tmp_path: Path) -> None:
    renderer = Renderer(Readers(lambda _p: LocalReader()), workers=1)

    async def main() -> tuple[set[int], str | None]:
        await renderer.render(str(ct_file(tmp_path / "ct.dcm")), RenderRequest())
        assert renderer._pool is not None
        pids = {p.pid for p in renderer._pool._processes.values()}  # the worker that drew it
        missing = await renderer.render(str(tmp_path / "gone.dcm"), RenderRequest(size=64))
        return pids, missing.problem

    try:
        pids, problem = asyncio.run(main())
    finally:
        renderer.shutdown()
    assert pids and os.getpid() not in pids
    assert problem is not None and "cannot be read" in problem
    with pytest.raises(RuntimeError):
        asyncio.run(renderer.render(str(tmp_path / "ct.dcm"), RenderRequest()))


def crash(data: bytes, request: RenderRequest) -> None:
    """What a decoder that segfaults on a bad file does to its process."""
    os._exit(3)


def test_a_worker_that_dies_gives_a_placeholder_and_the_next_image_is_drawn(tmp_path: Path) -> None:
    path = str(ct_file(tmp_path / "ct.dcm"))
    renderer = Renderer(Readers(lambda _p: LocalReader()), workers=1)

    async def main() -> tuple[str | None, str | None]:
        died = await renderer._run(crash, b"", RenderRequest(size=32))
        after = await renderer.render(path, RenderRequest())
        return died.problem, after.problem

    try:
        died, after = asyncio.run(main())
    finally:
        renderer.shutdown()
    assert died is not None and "decoder stopped" in died
    assert after is None
