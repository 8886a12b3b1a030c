"""A local tree whose reader, inside the worker process that reads, leaves a note per file saying which
process read it; `KILLS` in a name ends that process at once (as a crash in a C library would), and `HOLD`
waits, while the flag file `hold` exists, until a test opens the FIFO `gate` for writing (no timers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from pacsindex.sources.files import LocalReader, LocalTree, Reader


class NotingReader(LocalReader):
    def __init__(self, notes: str) -> None:
        self.notes = notes

    def open(self, path: str) -> IO[bytes]:
        name = os.path.basename(path)
        if "KILLS" in name:
            os._exit(70)
        note = Path(self.notes, name)
        if "HOLD" in name and Path(self.notes, "hold").exists():
            note.with_suffix(".holding").write_text(str(os.getpid()))
            with open(Path(self.notes, "gate"), "rb"):  # blocks until a writer opens the FIFO
                pass
        note.write_text(str(os.getpid()))
        return super().open(path)


class NotingTree(LocalTree):
    def __init__(self, root: str, notes: str) -> None:
        super().__init__(root)
        self.notes = notes

    def reader(self) -> Reader:
        return NotingReader(self.notes)


def readers_of(notes: Path, names: list[str]) -> set[int]:
    """The processes that read these files (each name's note)."""
    return {int((notes / name).read_text()) for name in names}


def hold(notes: Path) -> None:
    """From now on a `HOLD` file's read waits until `release(notes)`."""
    notes.mkdir(exist_ok=True)
    (notes / "hold").touch()
    os.mkfifo(notes / "gate")


def release(notes: Path) -> None:
    """Let every held read go on, and later ones not wait."""
    (notes / "hold").unlink()
    fd = os.open(notes / "gate", os.O_WRONLY | os.O_NONBLOCK)  # the readers are waiting in open()
    os.close(fd)
