"""Where archive files live and how to open them read-only: local/UNC, file lists, DICOMDIR, SMB, catalogs."""

from __future__ import annotations

from pacsindex.sources.dicomdir import DicomdirIndex
from pacsindex.sources.files import (
    DirListing,
    Entry,
    FileList,
    LocalReader,
    LocalTree,
    Reader,
    Source,
    WalkError,
    join_sep,
    reader_for,
    source_for,
    split_path,
)
from pacsindex.sources.readers import CHUNK, ReaderFor, Readers, coalesce

__all__ = [
    "CHUNK",
    "DicomdirIndex",
    "DirListing",
    "Entry",
    "FileList",
    "LocalReader",
    "LocalTree",
    "Reader",
    "ReaderFor",
    "Readers",
    "Source",
    "WalkError",
    "coalesce",
    "join_sep",
    "reader_for",
    "source_for",
    "split_path",
]
