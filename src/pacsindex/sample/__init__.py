"""A realistic synthetic archive to try pacsindex on."""

from __future__ import annotations

from pacsindex.sample.archive import write_sample

__all__ = [
    "write_sample",
]
