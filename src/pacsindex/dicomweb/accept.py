"""Content negotiation for DICOMweb (PS3.18 8.7): what a client's Accept header allows, for instances, frames,
bulk data and JSON answers, given that pacsindex sends everything as stored and never transcodes.

An Accept range with an explicit `transfer-syntax` that is not the stored one is not "close enough": it is
406 Not Acceptable, naming what pacsindex can send. A range without `transfer-syntax`, or with `*`, takes
the stored syntax. For frames, implicit and explicit VR little endian are the same pixel bytes, so either
answers for the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pacsindex.errors import NotAcceptable

__all__ = [
    "DICOM",
    "DICOM_JSON",
    "OCTET",
    "Wanted",
    "check_json_accept",
    "check_syntaxes",
    "frame_media",
    "instance_wanted",
    "media_ranges",
    "pixel_media",
    "retrieve_type",
]

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET = "application/octet-stream"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_NATIVE_LE = frozenset({IMPLICIT_LE, EXPLICIT_LE})
_NATIVE = _NATIVE_LE | {"1.2.840.10008.1.2.2"}  # and explicit VR big endian

# PS3.18 Table 8.7.3-5: the media type of a frame in each encapsulated transfer syntax.
_PIXEL_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}


def media_ranges(accept: str | None) -> list[tuple[str, dict[str, str]]]:
    """The Accept header's ranges in order, each as (type, parameters); ranges with q=0 left out."""
    out = []
    for item in (accept or "").split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        if not kind:
            continue
        values = {}
        for p in params:
            name, _, value = p.partition("=")
            values[name.strip().lower()] = value.strip().strip('"').lower()
        if values.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        out.append((kind.lower(), values))
    return out


@dataclass(frozen=True, slots=True)
class Wanted:
    """How to send instances: "multipart" or "single", and the transfer syntaxes the client named
    (None: any, i.e. as stored)."""

    kind: str
    syntaxes: frozenset[str] | None = None


def instance_wanted(accept: str | None, *, single: bool) -> Wanted:
    """What the client allows for instances: multipart/related; type="application/dicom" (or the bare
    file, for one instance, only when asked for), and which transfer syntaxes. NotAcceptable when it allows
    neither form."""
    ranges = media_ranges(accept)
    if not ranges:
        return Wanted("multipart")
    kind: str | None = None
    syntaxes: set[str] = set()
    anything = False
    for media, params in ranges:
        if media in ("*/*", "multipart/*") or (
            media == "multipart/related" and params.get("type", DICOM) in (DICOM, "application/*", "*/*")
        ):
            this = "multipart"
        elif single and media in (DICOM, "application/*"):
            this = "single"
        else:
            continue
        kind = kind or this
        if this != kind:
            continue
        syntax = params.get("transfer-syntax")
        if syntax in (None, "*") or media == "*/*":
            anything = True
        else:
            syntaxes.add(syntax)
    if kind is None:
        raise NotAcceptable(
            f'pacsindex sends instances as multipart/related; type="{DICOM}" in their stored '
            f"transfer syntax, not as {accept}"
        )
    return Wanted(kind, None if anything else frozenset(syntaxes))


def retrieve_type(accept: str | None, *, single: bool) -> str:
    """ "multipart" or "single" (see `instance_wanted`)."""
    return instance_wanted(accept, single=single).kind


def check_syntaxes(wanted: Wanted, stored: Iterable[str | None]) -> None:
    """NotAcceptable when the client named transfer syntaxes and an instance is stored in another one."""
    if wanted.syntaxes is None:
        return
    other = sorted({s or "unknown" for s in stored if s not in wanted.syntaxes})
    if other:
        raise NotAcceptable(
            f"stored in transfer syntax {', '.join(other)}; pacsindex sends instances only as stored (it "
            f"does not transcode), not as {', '.join(sorted(wanted.syntaxes))}"
        )


def check_json_accept(accept: str | None) -> str:
    """The JSON media type to answer QIDO-RS and metadata requests with; NotAcceptable for XML and
    anything else that is not JSON."""
    ranges = media_ranges(accept)
    if not ranges:
        return DICOM_JSON
    for kind, _ in ranges:
        if kind in (DICOM_JSON, "*/*", "application/*"):
            return DICOM_JSON
        if kind == "application/json":
            return "application/json"
    raise NotAcceptable(f"pacsindex answers in {DICOM_JSON} (the DICOM JSON model), not {accept}")


def pixel_media(syntax: str) -> str | None:
    """The media type of pixel data stored in `syntax`: application/octet-stream for native pixels, image/…
    for encapsulated; None when its frames cannot be sent one by one (deflated, video)."""
    if syntax in _NATIVE:
        return OCTET
    return _PIXEL_MEDIA.get(syntax)


def frame_media(accept: str | None, syntax: str, *, single_ok: bool) -> tuple[bool, str]:
    """(multipart?, the part's Content-Type) for frames stored in `syntax`; NotAcceptable when the client
    allows only media types or transfer syntaxes pacsindex cannot send them in."""
    stored = pixel_media(syntax)
    if stored is None:
        raise NotAcceptable(f"frames in transfer syntax {syntax} cannot be sent one by one")
    ranges = media_ranges(accept) or [("multipart/related", {"type": stored})]
    for media, params in ranges:
        if media in ("*/*", "multipart/*"):
            return True, f"{stored}; transfer-syntax={syntax}"
        multipart = media == "multipart/related"
        if not multipart and (not single_ok or media.startswith("multipart/")):
            continue
        part = params.get("type", stored) if multipart else media
        asked = params.get("transfer-syntax")
        if asked == "*" and part in ("*/*", OCTET, "image/*", stored):
            # Any syntax: what OHIF's loader asks for, with type=application/octet-stream.
            return multipart, f"{stored}; transfer-syntax={syntax}"
        if part not in ("*/*", stored) and not (part == "image/*" and stored.startswith("image/")):
            continue
        if asked in (None, "*") and not (part == OCTET and asked is None and syntax not in _NATIVE_LE):
            return multipart, f"{stored}; transfer-syntax={syntax}"
        if asked == syntax or (asked in _NATIVE_LE and syntax in _NATIVE_LE):
            return multipart, f"{stored}; transfer-syntax={asked}"
    raise NotAcceptable(
        f"the frames are stored as {stored} in transfer syntax {syntax}; pacsindex sends them only so (it "
        f"does not transcode), not as {accept}"
    )
