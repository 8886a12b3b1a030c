"""South African enrichment of index rows: ID numbers, medical aids, hospitals."""

from __future__ import annotations

from pacsindex.index.sa.enrich import Enricher
from pacsindex.index.sa.samatch import Tables, default_tables, load_tables

__all__ = [
    "Enricher",
    "Tables",
    "default_tables",
    "load_tables",
]
