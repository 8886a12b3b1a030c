"""An indexing run: the scan, its progress, and the background jobs that start it."""

from __future__ import annotations

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
