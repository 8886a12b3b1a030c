"""The index database: the only package that opens it (connect, schema, writer, queries, search).

The submodules are public too (`store`, `search`, `schema`, `db`, `clock`, `folders`); the names below are
the ones other packages use, re-exported.
"""

from __future__ import annotations

from pacsindex.index.clock import Clock, iso_utc, shown, utcnow
from pacsindex.index.db import open_db, token_hash
from pacsindex.index.locking import WriterLock
from pacsindex.index.sa.enrich import Enricher
from pacsindex.index.sa.samatch import Tables, load_tables
from pacsindex.index.search import MAX_LIMIT
from pacsindex.index.store import connect
from pacsindex.index.studies import (
    MAX_STUDY_PAGE,
    STUDY_KEY_PATTERN,
    count_studies,
    get_study,
    search_studies,
)
from pacsindex.index.textfold import fold, strip_accents
from pacsindex.index.writer import KnownFile, Writer

__all__ = [
    "Clock",
    "connect",
    "count_studies",
    "Enricher",
    "fold",
    "get_study",
    "iso_utc",
    "KnownFile",
    "load_tables",
    "MAX_LIMIT",
    "MAX_STUDY_PAGE",
    "open_db",
    "search_studies",
    "shown",
    "strip_accents",
    "STUDY_KEY_PATTERN",
    "Tables",
    "token_hash",
    "utcnow",
    "Writer",
    "WriterLock",
]
