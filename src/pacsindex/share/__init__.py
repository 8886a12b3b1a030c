"""Share links for recipients outside the practice: the store, the rules, the streamed zip."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacsindex.lazy import lazy_names

if TYPE_CHECKING:
    from pacsindex.share.bundle import PlanMap, ShareZip
    from pacsindex.share.deid import Deidentifier
    from pacsindex.share.download import CHUNK, ReaderFor, member_names, stream_file
    from pacsindex.share.limits import Slot, StreamLimiter
    from pacsindex.share.links import MAX_NOTE, MAX_PAGE, Access, Kind, Shares, share_series_keys
    from pacsindex.share.store import Share, iso

__all__ = [
    "Access",
    "CHUNK",
    "Deidentifier",
    "iso",
    "Kind",
    "MAX_NOTE",
    "MAX_PAGE",
    "member_names",
    "PlanMap",
    "ReaderFor",
    "Share",
    "share_series_keys",
    "Shares",
    "ShareZip",
    "Slot",
    "stream_file",
    "StreamLimiter",
]

# Imported on first use: a command that only lists links never pays for pydicom or the zip writer.
_FROM = {
    "Access": "pacsindex.share.links",
    "CHUNK": "pacsindex.share.download",
    "Deidentifier": "pacsindex.share.deid",
    "iso": "pacsindex.share.store",
    "Kind": "pacsindex.share.links",
    "MAX_NOTE": "pacsindex.share.links",
    "MAX_PAGE": "pacsindex.share.links",
    "member_names": "pacsindex.share.download",
    "PlanMap": "pacsindex.share.bundle",
    "ReaderFor": "pacsindex.share.download",
    "Share": "pacsindex.share.store",
    "share_series_keys": "pacsindex.share.links",
    "Shares": "pacsindex.share.links",
    "ShareZip": "pacsindex.share.bundle",
    "Slot": "pacsindex.share.limits",
    "stream_file": "pacsindex.share.download",
    "StreamLimiter": "pacsindex.share.limits",
}

__getattr__ = lazy_names(__name__, _FROM)
