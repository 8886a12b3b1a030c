"""Names a package re-exports but imports only when first used (PEP 562 module `__getattr__`): a command or a
worker process pays only for what it touches (`pacsindex index` never imports fpdf or the share bundle; a
spawned header reader never imports the scan, the index or the jobs)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports each name of `where` from its module when asked."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
