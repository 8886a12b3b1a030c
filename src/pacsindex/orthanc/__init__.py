"""The practice's Orthanc PACS: settings, connection tests, sends and the background send jobs."""

from __future__ import annotations

from pacsindex.orthanc.client import Connection, OrthancClient, SendProgress, send_series, series_files
from pacsindex.orthanc.jobs import SendJob, SendJobs

__all__ = [
    "Connection",
    "OrthancClient",
    "SendJob",
    "SendJobs",
    "SendProgress",
    "send_series",
    "series_files",
]
