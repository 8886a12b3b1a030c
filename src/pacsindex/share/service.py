"""Sharing as staff and the CLI use it, over the index and the share store: which series a new link is for
(a whole study by default, or the series ticked), what a sharer must be told first (series whose pixels
may carry burned-in names, when de-identifying), the message to send with a link, the practice's details
shown to recipients, and a share's series with their files for the zip.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from pacsindex.config import saved
from pacsindex.errors import ConfigError, InvalidQuery, NotFound
from pacsindex.index import store
from pacsindex.share.deid import burned_in_reason
from pacsindex.share.links import share_series_keys
from pacsindex.share.store import Share
from pacsindex.sources.readers import Readers

__all__ = [
    "PRACTICE_FIELDS",
    "burned_in",
    "chosen_series",
    "message",
    "practice",
    "save_practice",
    "share_parts",
]

log = logging.getLogger(__name__)

PRACTICE_SECTION = "practice"
PRACTICE_FIELDS = {"name": 120, "address": 300, "phone": 40}


def chosen_series(
    conn: sqlite3.Connection, *, study_of: str | None = None, series_keys: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The series a new link is for: every series of the study `study_of` belongs to (`series_keys`
    narrowing it down when given), or just `series_keys`. NotFound for a key the index does not have."""
    keys = [k.lower() for k in series_keys]
    if study_of is not None:
        first = store.get_series(conn, study_of.lower())
        if first is None:
            raise NotFound("no series with that SeriesKey (the index may have changed: search again)")
        rows = conn.execute(
            "SELECT SeriesKey FROM series WHERE study_id = (SELECT study_id FROM series WHERE SeriesKey = ?) "
            "ORDER BY SeriesNumber IS NULL, SeriesNumber, id",
            (study_of.lower(),),
        ).fetchall()
        in_study = [r[0] for r in rows]
        if keys:
            stray = set(keys) - set(in_study)
            if stray:
                raise InvalidQuery("the series ticked must all belong to that study")
            in_study = [k for k in in_study if k in keys]
        keys = in_study
    if not keys:
        raise InvalidQuery("choose a study or at least one series")
    found = []
    for key in dict.fromkeys(keys):
        series = store.get_series(conn, key)
        if series is None:
            raise NotFound("no series with that SeriesKey (the index may have changed: search again)")
        found.append(series)
    return found


def burned_in(
    conn: sqlite3.Connection, series: Sequence[Mapping[str, Any]], *, settings: Any = None
) -> list[dict[str, Any]]:
    """The series whose pixels may carry identifying text, each with why: its modality, or its first
    file's BurnedInAnnotation (one header read per series)."""
    readers = Readers(None, settings)
    flagged = []
    for s in series:
        first = next(store.series_files(conn, s["series_id"]), None) if "series_id" in s else None
        annotation = None
        if first is not None:
            try:
                with readers(first["path"]).open(first["path"]) as fh:
                    ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
                annotation = str(ds.get("BurnedInAnnotation", "") or "")
            except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
                log.info("cannot read a header to check for burned-in text: %s", type(exc).__name__)
        reason = burned_in_reason(s.get("Modality"), annotation)
        if reason:
            flagged.append({"SeriesKey": s["SeriesKey"], "Modality": s.get("Modality"), "reason": reason})
    return flagged


def share_parts(conn: sqlite3.Connection, share: Share) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The share's series still in the index, in the order they were chosen, each with its files in
    instance order. NotFound when none is left."""
    parts = []
    allowed = share_series_keys(share)  # the one answer to "what may this link show"
    for key in [k for k in share.series_keys if k in allowed] or sorted(allowed):
        series = store.get_series(conn, key)
        if series is None:
            continue
        files = list(store.series_files(conn, series.pop("series_id")))
        parts.append((series, files))
    if not parts:
        raise NotFound("the shared images are no longer in the practice's archive index")
    return parts


def practice(data_dir: Path) -> dict[str, str]:
    """The practice's name, address and phone as an admin saved them ("" where not set)."""
    try:
        values = saved.load(data_dir, PRACTICE_SECTION)
    except ConfigError as exc:
        log.warning("%s", exc)
        values = {}
    return {k: str(values.get(k) or "") for k in PRACTICE_FIELDS}


def save_practice(data_dir: Path, values: Mapping[str, Any]) -> dict[str, str]:
    clean = {}
    for key, limit in PRACTICE_FIELDS.items():
        text = " ".join(str(values.get(key) or "").split())
        if len(text) > limit:
            raise InvalidQuery(f"the practice's {key} is at most {limit} characters")
        clean[key] = text
    saved.save(data_dir, PRACTICE_SECTION, clean)
    return clean


def message(
    url: str, share: Share, series: Sequence[Mapping[str, Any]], tz: tzinfo, practice_name: str = ""
) -> str:
    """A short text to paste into an e-mail or WhatsApp: what, the link, until when (practice time), and
    where the passcode will come from. No patient name: messages get forwarded."""
    until = datetime.fromtimestamp(share.expires_at, tz).strftime("%A %d %B %Y, %H:%M %Z")
    modalities = ", ".join(dict.fromkeys(str(s.get("Modality") or "images") for s in series))
    what = f"{len(series)} series ({modalities})" if len(series) != 1 else f"a {modalities} series"
    lines = [
        f"Images shared by {practice_name or 'our practice'}"
        + (f" for {share.note}" if share.note else "")
        + f": {what}"
        + (", de-identified" if share.deidentified else "")
        + ".",
        f"Open: {url}",
        f"Valid until {until}.",
    ]
    if share.has_passcode:
        lines.append(
            "You need a passcode to open it: we send it separately (SMS or a call), never with this link."
        )
    if share.max_downloads is not None:
        lines.append(
            f"The link allows {share.max_downloads} download{'s' if share.max_downloads != 1 else ''}."
        )
    lines.append("Please do not forward this message: it gives access to patient images.")
    return "\n".join(lines)
