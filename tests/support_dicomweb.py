"""Reading a WADO-RS multipart/related answer back into the files it carries."""

from __future__ import annotations

__all__ = ["parse_multipart"]


def parse_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The parts of a multipart/related body of application/dicom parts, in order."""
    boundary = content_type.split("boundary=")[1].encode()
    assert body.startswith(b"--" + boundary + b"\r\n") and body.endswith(b"--" + boundary + b"--\r\n")
    parts = body[: -len(boundary) - 6].split(b"--" + boundary + b"\r\n")[1:]
    out = []
    for part in parts:
        head, _, data = part.partition(b"\r\n\r\n")
        assert head.startswith(b"Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1")
        assert data.endswith(b"\r\n")
        out.append(data[:-2])
    return out
