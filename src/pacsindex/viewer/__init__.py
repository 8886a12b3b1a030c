"""Seeing the images: drawing any image the index holds (render), in worker processes (pool), series
thumbnails cached in the data directory (thumbs), and which images a series holds (images). No web
framework here: the web layer's viewer, share viewer and DICOMweb /rendered routes use these."""

from __future__ import annotations

from pacsindex.viewer.images import Image, image, middle_image, series_images, study_series
from pacsindex.viewer.pool import Renderer
from pacsindex.viewer.render import JPEG, PNG, Rendered, RenderRequest, placeholder, render_bytes
from pacsindex.viewer.thumbs import ThumbnailCache, thumbnail_key

__all__ = [
    "Image",
    "JPEG",
    "PNG",
    "RenderRequest",
    "Rendered",
    "Renderer",
    "ThumbnailCache",
    "image",
    "middle_image",
    "placeholder",
    "render_bytes",
    "series_images",
    "study_series",
    "thumbnail_key",
]
