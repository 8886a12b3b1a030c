"""Firebird catalogs of other PACS programs as a source of file records."""

from __future__ import annotations

from pacsindex.sources.catalog.reader import CatalogSource

__all__ = [
    "CatalogSource",
]
