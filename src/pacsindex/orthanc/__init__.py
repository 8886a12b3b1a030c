"""The practice's Orthanc PACS: settings, connection tests and sends."""

from __future__ import annotations

from pacsindex.orthanc.client import Connection, OrthancClient, SendProgress, send_series, series_files

__all__ = [
    "Connection",
    "OrthancClient",
    "SendProgress",
    "send_series",
    "series_files",
]
