"""Settings: one typed object built at start-up, and the admin's saved sections."""

from __future__ import annotations

from pacsindex.config.settings import Settings, load

__all__ = [
    "Settings",
    "load",
]
