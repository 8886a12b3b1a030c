"""One file's bytes to a header record: the record itself (`record`), the fast path (`fastpath`), the
pydicom fallback (`fallback`), the read that picks between them (`headers`), JPEG 2000 sniffing (`j2k`), and
how names and dates are shown to people (`names`)."""

from pacsindex.dicom.headers import is_transient, open_local, read_header, sniff
from pacsindex.dicom.names import person_name, shown_date
from pacsindex.dicom.record import (
    ALL_FIELDS,
    FIELD_TABLE,
    FILE_FIELDS,
    IMAGE_WITHOUT_HEADER,
    FileResult,
    HeaderRecord,
    int_value,
    normalise_date,
    series_key,
    text_value,
)

__all__ = [
    "ALL_FIELDS",
    "FIELD_TABLE",
    "FILE_FIELDS",
    "IMAGE_WITHOUT_HEADER",
    "FileResult",
    "HeaderRecord",
    "int_value",
    "is_transient",
    "normalise_date",
    "open_local",
    "person_name",
    "read_header",
    "series_key",
    "shown_date",
    "sniff",
    "text_value",
]
