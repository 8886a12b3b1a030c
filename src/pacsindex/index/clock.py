"""Time, one way: a `Clock` is a function giving seconds since the epoch (injected, so tests move it),
stored times are aware UTC (ISO 8601 text, or epoch seconds), and times are shown in the practice's zone
(`Settings.tz`, Africa/Johannesburg unless configured)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone, tzinfo

__all__ = ["Clock", "utcnow", "iso", "iso_utc", "shown"]

Clock = Callable[[], float]


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    """An aware datetime as ISO 8601 text to the second (the offset it carries)."""
    return ts.isoformat(timespec="seconds")


def iso_utc(ts: float) -> str:
    """Epoch seconds (a Clock reading) as ISO 8601 UTC text to the second, as stored."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def shown(ts: datetime | float | str | None, tz: tzinfo | None) -> str | None:
    """A stored time (aware datetime, epoch seconds or ISO text) in the practice's zone, to the second."""
    if ts is None:
        return None
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    elif not isinstance(ts, datetime):
        ts = datetime.fromtimestamp(ts, timezone.utc)
    return (ts.astimezone(tz) if tz else ts).isoformat(timespec="seconds")
