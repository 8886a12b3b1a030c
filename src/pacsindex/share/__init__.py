"""Share links for recipients outside the practice: the store, the rules, the streamed zip."""

from __future__ import annotations

from pacsindex.share.bundle import PlanMap, ShareZip
from pacsindex.share.deid import Deidentifier
from pacsindex.share.download import CHUNK, member_names, stream_file
from pacsindex.share.limits import Slot, StreamLimiter
from pacsindex.share.links import MAX_NOTE, MAX_PAGE, Access, Kind, Shares, share_series_keys
from pacsindex.share.store import Share, iso

__all__ = [
    "Access",
    "CHUNK",
    "Deidentifier",
    "Kind",
    "MAX_NOTE",
    "MAX_PAGE",
    "PlanMap",
    "Share",
    "ShareZip",
    "Shares",
    "Slot",
    "StreamLimiter",
    "iso",
    "member_names",
    "share_series_keys",
    "stream_file",
]
