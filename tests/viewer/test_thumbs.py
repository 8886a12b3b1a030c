"""The thumbnail cache: kept in its folder, bounded in bytes with the least recently used dropped first,
the order surviving a restart, placeholders not kept, and one render for concurrent asks of one key."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pacsindex.viewer.render import JPEG, Rendered
from pacsindex.viewer.thumbs import ThumbnailCache


def test_least_recently_used_thumbnails_are_dropped_past_the_bound(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", max_bytes=3000)
    for name in "abc":
        cache.put(name, name.encode() * 1000)
    assert cache.get("a") == b"a" * 1000  # a is now the most recently used
    cache.put("d", b"d" * 1000)
    assert cache.get("b") is None  # the least recently used went
    assert {p.stem for p in (tmp_path / "thumbs").iterdir()} == {"a", "c", "d"}
    assert cache.total_bytes == 3000
    too_big = b"x" * 3001
    cache.put("huge", too_big)
    assert cache.get("huge") is None and len(cache) == 3


def test_the_order_survives_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "thumbs"
    first = ThumbnailCache(folder, max_bytes=3000)
    for n, name in enumerate("abc"):
        first.put(name, b"." * 1000)
        os.utime(folder / f"{name}.jpg", ns=(n * 10**9, n * 10**9))
    assert first.get("a") is not None  # touched: now the newest on disk too
    again = ThumbnailCache(folder, max_bytes=3000)
    again.put("d", b"." * 1000)
    assert again.get("b") is None and again.get("a") is not None


def test_one_render_for_concurrent_asks_and_placeholders_are_not_kept(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs", max_bytes=10_000)
    calls = []

    async def make() -> Rendered:
        calls.append(1)
        await asyncio.sleep(0)  # let the other asks arrive while this one renders
        return Rendered(b"jpeg", JPEG)

    async def broken() -> Rendered:
        return Rendered(b"placeholder", JPEG, problem="the NAS is unreachable")

    async def main() -> None:
        got = await asyncio.gather(*(cache.get_or_make("k", make) for _ in range(5)))
        assert {r.body for r in got} == {b"jpeg"}
        assert (await cache.get_or_make("p", broken)).problem is not None
        assert cache.get("p") is None

    asyncio.run(main())
    assert len(calls) == 1
    assert cache.get("k") == b"jpeg"
