"""Share links for recipients outside the practice: the store, the rules, the streamed zip."""

from __future__ import annotations

from pacsindex.share.download import member_names, stream_file
from pacsindex.share.limits import Slot, StreamLimiter
from pacsindex.share.links import MAX_PAGE, Access, Kind, Shares
from pacsindex.share.store import Share, iso

__all__ = [
    "Access",
    "Kind",
    "MAX_PAGE",
    "Share",
    "Shares",
    "Slot",
    "StreamLimiter",
    "iso",
    "member_names",
    "stream_file",
]
