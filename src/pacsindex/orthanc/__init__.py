"""The practice's Orthanc PACS: settings, connection tests (`client`), sends kept in the index (`sends`)."""

from __future__ import annotations

from pacsindex.orthanc.client import Connection, OrthancClient
from pacsindex.orthanc.sends import SendJobs

__all__ = [
    "Connection",
    "OrthancClient",
    "SendJobs",
]
