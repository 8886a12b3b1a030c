"""One DICOM image's bytes to a PNG or JPEG a person can look at: decode one frame with pydicom's pixel
handlers (pylibjpeg and its libjpeg, openjpeg and rle plugins: uncompressed, RLE, JPEG baseline, extended
and lossless, JPEG-LS, JPEG 2000 and HTJ2K; no codec of our own), apply the modality LUT (rescale slope and
intercept, or a Modality LUT Sequence), then a window (the one asked for, the file's own VOI window or VOI
LUT, or an automatic one from the image's values), invert MONOCHROME1, keep colour (YBR converted to RGB,
palette colour looked up, 16-bit RGB scaled), shrink to the size asked for and encode.

`render_bytes` is a pure function of its arguments, so it runs in a worker process (viewer.pool): decoding
and windowing are CPU work, and threads would hold the GIL away from searches and indexing. It never
raises for a bad image: what cannot be decoded comes back as a placeholder picture with `problem` saying
why, so a page of thumbnails shows every series, broken ones included.
"""

from __future__ import annotations

import io
import logging
import math
import textwrap
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.errors import InvalidDicomError
from pydicom.pixels import (  # type: ignore[attr-defined]  # pydicom re-exports them without __all__
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    pixel_array,
)
from pydicom.uid import UID, ImplicitVRLittleEndian

log = logging.getLogger(__name__)

__all__ = ["PNG", "JPEG", "RenderRequest", "Rendered", "render_bytes", "placeholder", "MAX_SIZE"]

PNG = "image/png"
JPEG = "image/jpeg"
MAX_SIZE = 4096  # no render larger than this on its longest edge
_AUTO_LOW, _AUTO_HIGH = 0.5, 99.5  # percentiles of the image's values an automatic window spans


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """What to draw. `frame` counts from 1; `size` fits the picture in a size x size square and `viewport`
    in width x height (both only shrink: a browser enlarges better than a second resampling); `window` is
    (center, width) in the modality's units (Hounsfield units for CT), None for the file's own."""

    frame: int = 1
    size: int | None = None
    viewport: tuple[int, int] | None = None
    window: tuple[float, float] | None = None
    media_type: str = PNG
    quality: int = 90


@dataclass(frozen=True, slots=True)
class Rendered:
    """An encoded picture, what was applied, and `problem` (a sentence) when it is a placeholder."""

    body: bytes
    media_type: str
    problem: str | None = None
    frames: int = 1
    window: tuple[float, float] | None = None  # the window applied to a monochrome image
    rows: int = 0
    columns: int = 0
    slice_position: float | None = None
    instance_number: int | None = None


def render_bytes(data: bytes, request: RenderRequest) -> Rendered:
    """`data` (a whole DICOM file, Part 10 or a raw dataset) drawn as `request` says; a placeholder with the
    reason when it cannot be."""
    with warnings.catch_warnings():
        # pydicom warns about the oddities of old files (padding, bad VRs) it reads anyway: not our news
        warnings.simplefilter("ignore")
        return _render(data, request)


def _render(data: bytes, request: RenderRequest) -> Rendered:
    try:
        ds = _read(data)
    except Exception as exc:  # noqa: BLE001  (any parse failure of a file is data, not a crash)
        return placeholder(request, _reason(exc, None))
    try:
        picture, info = _draw(ds, request)
    except Exception as exc:  # noqa: BLE001  (a codec's or a broken file's failure: one placeholder)
        log.debug("an image could not be rendered", exc_info=True)
        return replace(placeholder(request, _reason(exc, ds)), **_describe(ds))
    return replace(_encode(picture, request), **info)


# -- reading and decoding ----------------------------------------------------------------------------------


def _read(data: bytes) -> pydicom.Dataset:
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if len(ds) == 0 or all(tag.group == 0x0002 for tag in ds.keys()):
        raise InvalidDicomError("no DICOM elements")
    if data[128:132] != b"DICM" and "SOPClassUID" not in ds and "Rows" not in ds:
        raise InvalidDicomError("neither a Part 10 file nor a dataset")
    meta = ds.file_meta
    if "TransferSyntaxUID" not in meta:  # a raw dataset from an old archive: as it was read
        implicit, little = ds.original_encoding
        if implicit is False:
            meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
        else:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def _frames(ds: pydicom.Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _describe(ds: pydicom.Dataset) -> dict[str, Any]:
    position = None
    ipp = ds.get("ImagePositionPatient")
    if ipp is not None and len(ipp) == 3:
        position = _number(ipp[2])
    if position is None:
        position = _number(ds.get("SliceLocation"))
    number = _number(ds.get("InstanceNumber"))
    return {
        "frames": _frames(ds),
        "rows": int(ds.get("Rows") or 0),
        "columns": int(ds.get("Columns") or 0),
        "slice_position": position,
        "instance_number": int(number) if number is not None else None,
    }


def _draw(ds: pydicom.Dataset, request: RenderRequest) -> tuple[Image.Image, dict[str, Any]]:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise _NoImage("this file holds no image (a report, a structured document or a presentation state)")
    info = _describe(ds)
    frames = info["frames"]
    if not 1 <= request.frame <= frames:
        raise _NoImage(f"this image has frames 1 to {frames}, not {request.frame}")
    arr = pixel_array(ds, index=request.frame - 1 if frames > 1 else None)
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4) and frames == 1:
        arr = arr[0]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel") or 1)
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        return Image.fromarray(_to_8bit(rgb, 16 if rgb.max(initial=0) > 255 else 8), "RGB"), info
    if samples >= 3 or arr.ndim == 3:
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
        return Image.fromarray(_to_8bit(arr[..., :3], bits), "RGB"), info
    values = _modality(arr, ds)
    grey, window = _window(values, ds, request.window)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    info["window"] = window
    return Image.fromarray(grey, "L"), info


class _NoImage(ValueError):
    """A file that is fine but has no picture to draw (or not the frame asked for)."""


def _modality(arr: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    """Stored values to modality values (Hounsfield units for CT), as float32."""
    if "ModalityLUTSequence" in ds:
        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    slope = _number(ds.get("RescaleSlope"))
    intercept = _number(ds.get("RescaleIntercept"))
    out = arr.astype(np.float32, copy=False)
    if slope not in (None, 1.0):
        out = out * np.float32(slope)
    if intercept not in (None, 0.0):
        out = out + np.float32(intercept)
    return out


def _first(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
        try:
            value = value[0]
        except (IndexError, TypeError):
            return None
    return _number(value)


def _window(
    values: np.ndarray, ds: pydicom.Dataset, asked: tuple[float, float] | None
) -> tuple[np.ndarray, tuple[float, float]]:
    """8-bit grey levels of `values` through a window, and the window used."""
    function = str(ds.get("VOILUTFunction", "LINEAR")).upper()
    center: float | None
    width: float | None
    if asked is not None:
        center, width = asked
    else:
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if (center is None or width is None or width <= 0) and "VOILUTSequence" in ds:
            try:
                return _voi_lut(values, ds)
            except Exception:  # noqa: BLE001  (a broken VOI LUT: fall back to an automatic window)
                log.debug("a VOI LUT could not be applied", exc_info=True)
        if center is None or width is None or width <= 0:
            center, width = _auto_window(values)
    width = max(float(width), 1.0)
    center = float(center)
    if function == "SIGMOID":
        scaled = 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    elif function == "LINEAR_EXACT":
        scaled = (values - center) / width * 255.0 + 127.5
    else:  # LINEAR, PS3.3 C.11.2.1.2.1
        scaled = ((values - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5) * 255.0
    grey = np.clip(scaled, 0, 255).astype(np.uint8)
    return grey, (round(center, 3), round(width, 3))


def _voi_lut(values: np.ndarray, ds: pydicom.Dataset) -> tuple[np.ndarray, tuple[float, float]]:
    item = ds.VOILUTSequence[0]
    bits = int(item.LUTDescriptor[2]) or 16
    out = apply_voi_lut(values.astype(np.int64), ds, index=0, prefer_lut=True)
    top = float((1 << bits) - 1) if bits <= 16 else float(np.max(out))
    grey = np.clip(np.asarray(out, dtype=np.float32) * (255.0 / max(top, 1.0)), 0, 255).astype(np.uint8)
    low, high = float(np.min(values)), float(np.max(values))
    return grey, (round((low + high) / 2, 3), round(max(high - low, 1.0), 3))


def _auto_window(values: np.ndarray) -> tuple[float, float]:
    """A window spanning nearly all of the image's values (a few outliers ignored), from a sample."""
    step = max(1, int(math.sqrt(values.size / 65536)))
    sample = values[::step, ::step] if values.ndim == 2 else values.ravel()[:: step * step]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, (_AUTO_LOW, _AUTO_HIGH)))
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    return (low + high) / 2 + 0.5, max(high - low, 1.0) + 1.0


def _to_8bit(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8 and bits <= 8:
        return np.ascontiguousarray(arr)
    if bits > 8:
        return np.ascontiguousarray((arr.astype(np.uint32) >> (bits - 8)).clip(0, 255).astype(np.uint8))
    return np.ascontiguousarray(arr.clip(0, 255).astype(np.uint8))


# -- output ----------------------------------------------------------------------------------------------


def _box(request: RenderRequest) -> tuple[int, int] | None:
    if request.viewport is not None:
        w, h = request.viewport
        return min(max(w, 1), MAX_SIZE), min(max(h, 1), MAX_SIZE)
    if request.size is not None:
        side = min(max(request.size, 1), MAX_SIZE)
        return side, side
    return None


def _encode(picture: Image.Image, request: RenderRequest) -> Rendered:
    box = _box(request)
    if box is not None and (picture.width > box[0] or picture.height > box[1]):
        picture.thumbnail(box, Image.Resampling.BILINEAR, reducing_gap=2.0)
    elif max(picture.size) > MAX_SIZE:
        picture.thumbnail((MAX_SIZE, MAX_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    if request.media_type == JPEG:
        picture.save(out, "JPEG", quality=min(max(request.quality, 1), 100))
    else:
        picture.save(out, "PNG", compress_level=1)  # fast: the bytes cross a LAN, not the internet
    return Rendered(out.getvalue(), JPEG if request.media_type == JPEG else PNG)


def placeholder(request: RenderRequest, reason: str) -> Rendered:
    """A dark picture saying the image cannot be shown and why, in the size asked for."""
    box = _box(request) or (256, 256)
    side = min(box)
    picture = Image.new("RGB", (side, side), (38, 38, 44))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((2, 2, side - 3, side - 3), outline=(190, 120, 40), width=max(1, side // 64))
    big = max(8, side // 14)
    font = ImageFont.load_default(size=big)
    small = ImageFont.load_default(size=max(7, side // 20))
    draw.text((side // 16, side // 8), "Cannot show\nthis image", fill=(240, 200, 120), font=font)
    lines = textwrap.wrap(reason, width=max(12, int(side / max(7, side // 20) * 1.7)))[:6]
    draw.multiline_text((side // 16, side // 8 + 3 * big), "\n".join(lines), fill=(220, 220, 220), font=small)
    rendered = _encode(picture, replace(request, size=None, viewport=None))
    return replace(rendered, problem=reason)


def _reason(exc: BaseException, ds: pydicom.Dataset | None) -> str:
    """Why an image cannot be drawn, as a sentence for staff (no paths, no patient data)."""
    if isinstance(exc, _NoImage):
        return str(exc)
    if isinstance(exc, InvalidDicomError):
        return "the file is not a DICOM file"
    syntax = None
    if ds is not None:
        try:
            syntax = UID(ds.file_meta.TransferSyntaxUID)
        except (AttributeError, ValueError):
            syntax = None
    name = syntax.name if syntax is not None else "unknown"
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    lowered = str(exc).lower()
    if "missing" in lowered and "dependenc" in lowered or "no pixel data decoders" in lowered:
        return f"no decoder is installed for this image's compression ({name})"
    if "unable to decode" in lowered:
        return f"the decoders could not read this image's compressed data ({name}): damaged or unusual"
    if isinstance(exc, (EOFError, MemoryError)) or any(
        word in lowered for word in ("truncat", "not enough", "less than expected")
    ):
        return f"the image data is incomplete or damaged ({name})"
    return f"the image data could not be decoded ({name}): {text}"
