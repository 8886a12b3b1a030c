"""A local tree whose reader misbehaves on chosen file names, inside the worker process that reads them:
`KILLS` ends the process at once (as a segfault or the OOM killer would), `HANGS` spins in Python forever,
`STUCK` spins with the timer signal blocked (a read stuck in C code), `HOGS` runs out of memory."""

from __future__ import annotations

import os
import signal
from typing import IO

from pacsindex.sources.files import LocalReader, LocalTree, Reader


class CrashyReader(LocalReader):
    def open(self, path: str) -> IO[bytes]:
        name = os.path.basename(path)
        if "KILLS" in name:
            os._exit(70)
        if "HANGS" in name:
            while True:
                pass
        if "STUCK" in name:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
            while True:
                pass
        if "HOGS" in name:
            raise MemoryError
        return super().open(path)


class CrashyTree(LocalTree):
    def reader(self) -> Reader:
        return CrashyReader()
