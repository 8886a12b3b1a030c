"""Where archive files live and how to open them read-only: local/UNC, file lists, DICOMDIR, SMB, catalogs."""

from __future__ import annotations

from pacsindex.sources.dicomdir import DicomdirIndex
from pacsindex.sources.files import (
    DirKept,
    DirListing,
    Entry,
    FileList,
    LocalReader,
    LocalTree,
    Reader,
    SkipFn,
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
    "coalesce",
    "DicomdirIndex",
    "DirKept",
    "DirListing",
    "Entry",
    "FileList",
    "join_sep",
    "LocalReader",
    "LocalTree",
    "Reader",
    "reader_for",
    "ReaderFor",
    "Readers",
    "SkipFn",
    "Source",
    "source_for",
    "split_path",
    "WalkError",
]
