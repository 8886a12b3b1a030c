"""The survey of a first index: which files of new folders wait for later, and which folders are filling.

On a slow link a first index of a large archive takes hours, and a series is searchable only once one of its
files is read. So of a folder new to the index one file is read as the walk finds it (its series, study and
patient become searchable at once) and the others wait: worker processes with nothing else to do take them
while the walk goes on, and the run reads the rest after the walk. Every read goes through the run's worker
pool like any other (a hostile file only ever takes down a worker). While files of a folder wait, the series
of its indexed files are marked `filling` in the index (search shows "still being indexed"). At most
`max_files` files wait, so memory stays bounded: past that, new folders are read whole as they come. The run
(`scan.py`) owns the pipeline; this module only keeps the books.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from pacsindex.index.writer import KnownFile
from pacsindex.sources.files import DirListing, Entry, Reader

__all__ = ["Survey", "Waiting"]


class Waiting(NamedTuple):
    """Files of one folder that wait, with what the run needs to write them: the source's reader, the
    folder's listing, its id in the index and the files the index had there."""

    reader: Reader
    item: DirListing
    dir_id: int
    known: dict[str, KnownFile]
    entries: Sequence[Entry]


class Survey:
    """The files of new folders that wait, in listing order, and how many of each folder are unwritten."""

    def __init__(self, enabled: bool, max_files: int) -> None:
        self.enabled = enabled
        self.max_files = max_files
        self.waiting: deque[Waiting] = deque()
        self._count = 0  # files in `waiting`
        self._left: dict[int, int] = {}  # folder id -> its files not written yet

    def split(
        self,
        reader: Reader,
        item: DirListing,
        dir_id: int,
        known: dict[str, KnownFile],
        new_folder: bool,
        fresh: Sequence[Entry],
    ) -> Sequence[Entry]:
        """The files of a listed folder to read now: of a new folder with several files to read, the first
        (the others wait); else all of them."""
        if not (self.enabled and new_folder and 1 < len(fresh) <= self.max_files - self._count + 1):
            return fresh
        self.waiting.append(Waiting(reader, item, dir_id, known, fresh[1:]))
        self._left[dir_id] = len(fresh) - 1
        self._count += len(fresh) - 1
        return fresh[:1]

    def take(self, files: int) -> list[Waiting]:
        """Up to `files` waiting files, in listing order, all of one source (one reader); at least one
        folder's part when any file waits."""
        taken: list[Waiting] = []
        while self.waiting and (not taken or self.waiting[0].reader is taken[0].reader) and files > 0:
            head = self.waiting[0]
            part = head.entries[:files]
            taken.append(head._replace(entries=part))
            files -= len(part)
            self._count -= len(part)
            if len(part) == len(head.entries):
                self.waiting.popleft()
            else:
                self.waiting[0] = head._replace(entries=head.entries[len(part) :])
        return taken

    def written(self, dir_id: int, files: int, first: bool) -> bool | None:
        """Some files of a folder were written: True when its series are to be marked filling (the survey's
        file of a folder whose other files wait), False when they are filled (the folder's last waiting
        file), None when nothing changes."""
        if dir_id not in self._left:
            return None
        if first:
            return True
        self._left[dir_id] -= files
        if self._left[dir_id] > 0:
            return None
        del self._left[dir_id]
        return False
