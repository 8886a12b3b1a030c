"""Series thumbnails cached in the data directory (never beside the files on the NAS): one JPEG per
series and source version, at most `max_bytes` in all, the least recently used dropped first.

A thumbnail's name is a hash of the series, the file it shows (path, size, modification time) and its
size, so a changed file gets a new thumbnail and the old one ages out. Which thumbnails were used last is
the files' modification times (touched on every hit), so the order survives a restart. Placeholders (an
image that could not be read or decoded) are not kept: the NAS may be back on the next try. Two requests
for the same missing thumbnail render it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

from pacsindex.viewer.render import JPEG, Rendered

log = logging.getLogger(__name__)

__all__ = ["ThumbnailCache", "thumbnail_key"]


def thumbnail_key(series_key: str, path: str, size: int, mtime_ns: int, side: int) -> str:
    text = f"{series_key}\n{path}\n{size}\n{mtime_ns}\n{side}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ThumbnailCache:
    """JPEG thumbnails in `folder`, at most `max_bytes` of them."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] | None = None  # name -> bytes, least recently used first
        self._total = 0
        self._pending: dict[str, asyncio.Future[Rendered]] = {}

    def _load(self) -> OrderedDict[str, int]:
        if self._sizes is None:
            found: list[tuple[int, str, int]] = []
            with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as it:
                for entry in it:
                    if entry.name.endswith(".jpg") and entry.is_file():
                        st = entry.stat()
                        found.append((st.st_mtime_ns, entry.name[:-4], st.st_size))
            found.sort()
            self._sizes = OrderedDict((name, size) for _, name, size in found)
            self._total = sum(size for _, _, size in found)
        return self._sizes

    @property
    def total_bytes(self) -> int:
        with self._lock:
            self._load()
            return self._total

    def __len__(self) -> int:
        with self._lock:
            return len(self._load())

    def get(self, key: str) -> bytes | None:
        with self._lock:
            sizes = self._load()
            if key not in sizes:
                return None
            sizes.move_to_end(key)
        path = self.folder / f"{key}.jpg"
        try:
            data = path.read_bytes()
            os.utime(path)  # most recently used, also after a restart
        except OSError:
            with self._lock:
                self._total -= self._load().pop(key, 0)
            return None
        return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{key}.jpg"
        temp = path.with_suffix(f".{threading.get_ident()}.tmp")
        try:
            temp.write_bytes(data)
            os.replace(temp, path)
        except OSError as exc:
            log.warning("a thumbnail could not be kept in %s: %s", self.folder, exc.strerror or exc)
            with contextlib.suppress(OSError):
                temp.unlink()
            return
        with self._lock:
            sizes = self._load()
            self._total += len(data) - sizes.pop(key, 0)
            sizes[key] = len(data)
            while self._total > self.max_bytes and sizes:
                old, size = sizes.popitem(last=False)
                self._total -= size
                with contextlib.suppress(OSError):
                    (self.folder / f"{old}.jpg").unlink()

    async def get_or_make(self, key: str, make: Callable[[], Awaitable[Rendered]]) -> Rendered:
        """The cached thumbnail, or `make()`'s (kept unless it is a placeholder); one `make` per key at a
        time."""
        data = await asyncio.to_thread(self.get, key)
        if data is not None:
            return Rendered(data, JPEG)
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            rendered = await make()
            if rendered.problem is None:
                await asyncio.to_thread(self.put, key, rendered.body)
            future.set_result(rendered)
            return rendered
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._pending.pop(key, None)
