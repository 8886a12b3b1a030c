"""How many share downloads run at once: at most `limit` in all, `per_link` for one link and `per_client`
for one client address, so one recipient (or one link posted in a group chat) cannot take every place and
starve the others, nor indexing and search. `acquire()` never waits, so async code may call it: past a
limit it raises ShareBusy (the web layer answers 429 with Retry-After). Only a request for a link that
exists asks for a place (the web layer checks the token first), so made-up links never take one. A
download whose client stops reading gives its place back after `share_stall_seconds` (the web layer's
stream watches for that).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field

from pacsindex.errors import ShareBusy

__all__ = ["Slot", "StreamLimiter"]


@dataclass
class Slot:
    """A held place; `release()` (or leaving the `with`) frees it, once."""

    limiter: StreamLimiter
    link: Hashable = None
    client: Hashable = None
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limiter._release(self)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StreamLimiter:
    def __init__(
        self,
        limit: int = 4,
        retry_after: int = 10,
        *,
        per_link: int | None = None,
        per_client: int | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("the stream limit must be at least 1")
        self.limit = limit
        self.per_link = min(per_link or limit, limit)
        self.per_client = min(per_client or limit, limit)
        self.retry_after = retry_after
        self._active = 0
        self._links: Counter[Hashable] = Counter()
        self._clients: Counter[Hashable] = Counter()
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        return self._active

    def acquire(self, link: Hashable = None, client: Hashable = None) -> Slot:
        with self._lock:
            if self._active >= self.limit:
                why = f"{self.limit} downloads are already running"
            elif link is not None and self._links[link] >= self.per_link:
                why = f"{self.per_link} downloads of this link are already running"
            elif client is not None and self._clients[client] >= self.per_client:
                why = f"{self.per_client} downloads to your address are already running"
            else:
                self._active += 1
                self._links[link] += 1
                self._clients[client] += 1
                return Slot(self, link, client)
        raise ShareBusy(f"{why}: try again in a moment", retry_after=self.retry_after)

    def _release(self, slot: Slot) -> None:
        with self._lock:
            self._active -= 1
            for counter, key in ((self._links, slot.link), (self._clients, slot.client)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]
