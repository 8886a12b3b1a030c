"""One indexing run per index at a time: an OS file lock beside the database.

The lock is released by the operating system when the process dies (even by kill -9), so a crashed run
never blocks the next one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from pacsindex.errors import Conflict, StoreError


class WriterLock:
    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(str(db_path) + ".lock")
        self._fh: int | None = None

    def __enter__(self) -> WriterLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot create lock file {self.path}: {exc.strerror or exc}") from exc
        try:
            _lock(fd)
        except OSError as exc:
            os.close(fd)
            raise Conflict(
                f"another indexing run is using {self.path.with_suffix('')}; wait for it or stop it first"
            ) from exc
        self._fh = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fh is not None:
            _unlock(self._fh)
            os.close(self._fh)
            self._fh = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
