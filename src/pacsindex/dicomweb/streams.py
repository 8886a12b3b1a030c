"""How many DICOMweb retrievals (WADO-RS, WADO-URI, metadata) are sent at once: `RetrievalLimiter`.

Each retrieval reads the archive while it is sent; a viewer or a script that opens many at once must not
starve indexing, search or share downloads. Past the limit a retrieval is refused at once with Busy (the web
layer answers 429 with Retry-After) rather than queued, so a client that never reads cannot hold a queue.
"""

from __future__ import annotations

import threading
from types import TracebackType

from pacsindex.errors import Busy

__all__ = ["RetrievalLimiter", "RetrievalSlot"]


class RetrievalSlot:
    """A held place among the retrievals allowed at once; `release()` frees it (twice is harmless)."""

    def __init__(self, limiter: RetrievalLimiter) -> None:
        self._limiter = limiter
        self._released = False

    def release(self) -> None:
        with self._limiter._lock:
            if not self._released:
                self._released = True
                self._limiter._active -= 1

    def __enter__(self) -> RetrievalSlot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class RetrievalLimiter:
    """At most `limit` retrievals at once; `acquire()` never waits (Busy past the limit)."""

    def __init__(self, limit: int = 8, retry_after: int = 5) -> None:
        if limit < 1:
            raise ValueError("the retrieval limit must be at least 1")
        self.limit = limit
        self.retry_after = retry_after
        self._active = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        return self._active

    def acquire(self) -> RetrievalSlot:
        with self._lock:
            if self._active >= self.limit:
                raise Busy(
                    f"{self.limit} DICOMweb retrievals are already running: try again in a moment",
                    retry_after=self.retry_after,
                )
            self._active += 1
        return RetrievalSlot(self)
