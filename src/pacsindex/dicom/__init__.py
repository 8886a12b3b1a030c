"""One file's bytes to a header record: the fast path, the pydicom fallback, JPEG 2000 sniffing."""

from __future__ import annotations

from pacsindex.dicom.headers import (
    ALL_FIELDS,
    IMAGE_WITHOUT_HEADER,
    FileResult,
    HeaderRecord,
    open_local,
    read_header,
    series_key,
)

__all__ = [
    "ALL_FIELDS",
    "FileResult",
    "HeaderRecord",
    "IMAGE_WITHOUT_HEADER",
    "open_local",
    "read_header",
    "series_key",
]
