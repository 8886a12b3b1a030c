"""Reading archive files for streaming: one reader per location, made on first use, and chunk joining for
sockets. Used by share downloads, DICOMweb retrievals and Orthanc sends alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pacsindex.sources.files import Reader, is_smb_url
from pacsindex.sources.files import reader_for as default_reader_for

__all__ = ["CHUNK", "ReaderFor", "Readers", "coalesce"]

CHUNK = 1 << 20
ReaderFor = Callable[[str], Reader]


class Readers:
    """One reader per kind of location (local, or one smb://host), made on first use."""

    def __init__(self, reader_for: ReaderFor | None = None, settings: Any = None) -> None:
        self._reader_for = reader_for or (lambda path: default_reader_for(path, settings))
        self._readers: dict[str, Reader] = {}

    def __call__(self, path: str) -> Reader:
        key = path.split("/", 3)[2].lower() if is_smb_url(path) else ""
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = self._reader_for(path)
        return reader


def coalesce(chunks: Iterator[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """The same bytes in fewer pieces: a zip's 30-byte headers, 16-byte descriptors and small files are
    joined up to about `size`, so the socket gets a few large writes instead of many small ones; pieces of
    file data of `size` / 8 or more pass through without being copied."""
    small = max(1, size // 8)
    pending: list[bytes] = []
    held = 0
    try:
        for chunk in chunks:
            if len(chunk) >= small:
                if pending:
                    yield b"".join(pending)
                    pending, held = [], 0
                yield chunk
                continue
            pending.append(chunk)
            held += len(chunk)
            if held >= size:
                yield b"".join(pending)
                pending, held = [], 0
        if pending:
            yield b"".join(pending)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # closes the file being read, whatever stopped the stream
