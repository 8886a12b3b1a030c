"""Rendering off the event loop and off the GIL: `Renderer` reads a file with the sources' readers (local,
UNC or smb://, read-only, in a thread: that is waiting, not work) and hands its bytes to a pool of worker
processes that decode and draw it (`render.render_bytes`).

At most `at_once` renders (read + draw) are under way; more wait their turn without holding a thread, so a
page asking for a hundred thumbnails on a slow NAS costs a queue, not the threads that answer searches,
status polls and share downloads. The pool is built once, by `create_app`, and shut down when the app
stops. A worker that dies (a codec crashing on a bad file) is replaced; that image gets a placeholder.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pacsindex.errors import SourceError
from pacsindex.sources.readers import Readers
from pacsindex.viewer.render import Rendered, RenderRequest, placeholder, render_bytes

log = logging.getLogger(__name__)

__all__ = ["MAX_FILE", "Renderer"]

MAX_FILE = 1 << 30  # a file larger than this (a long multi-frame cine) is not read whole to draw a frame


def _warm() -> int:
    """Run in each new worker so its first real render does not also pay for importing numpy and pydicom."""
    import numpy  # noqa: F401
    import pydicom.pixels  # noqa: F401

    return 0


class Renderer:
    """Reads and renders images: `workers` processes, at most `at_once` renders under way."""

    def __init__(self, readers: Readers, *, workers: int, at_once: int | None = None) -> None:
        self.readers = readers
        self.workers = max(1, workers)
        self.at_once = max(1, at_once or 2 * self.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the renderer has been shut down")
        if self._pool is None:
            # spawn, as on Windows: a fork of a threaded server is not safe
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self._pool

    def warm(self) -> None:
        """Start the worker processes now (the app does this at start-up, without waiting for them)."""
        pool = self._executor()
        for _ in range(self.workers):
            pool.submit(_warm)

    def shutdown(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _read(self, path: str) -> bytes | str:
        """The file's bytes, or why it cannot be read now."""
        try:
            with self.readers(path).open(path) as fh:
                data = fh.read(MAX_FILE + 1)
        except (OSError, SourceError) as exc:
            log.debug("an image file could not be read: %s", type(exc).__name__)
            return "the file cannot be read from the archive now (moved, deleted or the NAS is unreachable)"
        if len(data) > MAX_FILE:
            return f"the file is larger than {MAX_FILE >> 20} MiB: too large to draw here"
        return data

    async def render(self, path: str, request: RenderRequest) -> Rendered:
        """The image at `path` drawn as asked; a placeholder saying why when it cannot be."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.at_once)
        async with self._slots:
            data = await asyncio.to_thread(self._read, path)
            if isinstance(data, str):
                return placeholder(request, data)
            return await self._run(render_bytes, data, request)

    async def _run(self, fn: object, data: bytes, request: RenderRequest) -> Rendered:
        try:
            future: Future[Rendered] = self._executor().submit(fn, data, request)  # type: ignore[arg-type]
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            log.warning("a rendering process stopped (a decoder crashed); starting a new pool")
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            return placeholder(request, "the decoder stopped on this image's data (damaged or unusual)")
