"""An indexing run: the scan, its progress, and the background jobs that start it.

The names below are imported on first use: a header-reading worker process imports
`pacsindex.ingest.workers`, which imports this package first, and must not pay for the scan, the index and
the jobs it never uses (~70 ms of every worker's start, a third of a one-file run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacsindex.lazy import lazy_names

if TYPE_CHECKING:
    from pacsindex.ingest.jobs import IndexJobs, SourceFactory
    from pacsindex.ingest.progress import Progress, StatusFile
    from pacsindex.ingest.scan import Run, ScanOptions, default_workers, run_index
    from pacsindex.ingest.warm import WarmPool

__all__ = [
    "IndexJobs",
    "Progress",
    "Run",
    "ScanOptions",
    "SourceFactory",
    "StatusFile",
    "WarmPool",
    "default_workers",
    "run_index",
]

_FROM = {
    "IndexJobs": "pacsindex.ingest.jobs",
    "SourceFactory": "pacsindex.ingest.jobs",
    "Progress": "pacsindex.ingest.progress",
    "StatusFile": "pacsindex.ingest.progress",
    "Run": "pacsindex.ingest.scan",
    "ScanOptions": "pacsindex.ingest.scan",
    "default_workers": "pacsindex.ingest.scan",
    "run_index": "pacsindex.ingest.scan",
    "WarmPool": "pacsindex.ingest.warm",
}

__getattr__ = lazy_names(__name__, _FROM)
