"""A source that holds an indexing run in the middle, so a test can look at it mid-run with no timing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from pacsindex.sources.files import DirKept, DirListing, LocalTree, Reader, SkipFn, WalkError

__all__ = ["GatedTree"]


class GatedTree:
    """A local tree whose walk stops after `before_gate` folders until `gate` is set (or the run is
    cancelled), so a test can look at a run in the middle."""

    def __init__(self, root: str, gate: threading.Event, before_gate: int = 3) -> None:
        self.inner = LocalTree(root)
        self.label = self.inner.label
        self.gate = gate
        self.before_gate = before_gate
        self.at_gate = threading.Event()

    def check(self) -> None:
        self.inner.check()

    def reader(self) -> Reader:
        return self.inner.reader()

    def complete_roots(self) -> list[tuple[str, str]]:
        return self.inner.complete_roots()

    def walk(
        self, cancel: threading.Event, skip: SkipFn | None = None
    ) -> Iterator[DirListing | DirKept | WalkError]:
        walker = self.inner.walk(cancel, skip)
        try:
            for number, item in enumerate(walker):
                if number == self.before_gate:
                    self.at_gate.set()
                    while not self.gate.wait(0.02):
                        if cancel.is_set():
                            return
                yield item
        finally:
            walker.close()
