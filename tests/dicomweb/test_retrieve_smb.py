"""WADO-RS straight from a real Samba share (smb:// roots): a series with a raw dataset (sent behind a made
file meta header) and a file gone since indexing (left out and counted for the Warning header), and JPEG 2000
frames found by seeking in the NAS file, all byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from dicomweb_live import multipart_parts, write_jpeg2000

from conftest import write_dicom
from pacsindex.dicomweb.frames import open_frames
from pacsindex.dicomweb.retrieve import Multipart, find, open_single
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for
from pacsindex.sources.readers import Readers
from pacsindex.sources.smb import reader as smb
from samba_server import SambaServer, samba_fixture  # noqa: F401  (the "samba" fixture)

STUDY, SERIES, J2K = "1.9.5", "1.9.5.1", "1.9.5.2"


@pytest.mark.samba
def test_series_and_frames_from_the_nas(samba: SambaServer, tmp_path: Path) -> None:
    smb.close_connections()
    folder = samba.shares["archive"] / "dicomweb"
    ids = dict(StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES)
    write_dicom(folder / "RAW0001", preamble=False, InstanceNumber=1, **ids)
    for i in (2, 3):
        write_dicom(folder / f"IM{i}.dcm", InstanceNumber=i, rows=32, **ids)
    _, frames = write_jpeg2000(folder / "j2k" / "MF.dcm", StudyInstanceUID=STUDY, SeriesInstanceUID=J2K)
    creds = smb.SmbCredentials(samba.user, samba.password)
    db = tmp_path / "smb.db"
    run_index(db, [source_for(samba.url("archive", "dicomweb"), creds)], ScanOptions(workers=1))
    readers = Readers(settings=creds)
    with store.reading(db) as conn:
        series, j2k = find(conn, STUDY, SERIES), find(conn, STUDY, J2K)
    assert all(f.path.startswith("smb://") for f in series.files)
    (folder / "IM3.dcm").unlink()  # gone from the NAS since indexing
    multipart = Multipart(series.files, readers, chunk=5000)
    assert multipart.missing == 1 and multipart.warning and "1 of 3" in multipart.warning
    (raw_type, raw), (im2_type, im2) = multipart_parts(b"".join(multipart), multipart.content_type)
    assert raw_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2"  # detected: implicit VR
    assert raw.endswith((folder / "RAW0001").read_bytes()) and raw[128:132] == b"DICM"
    assert pydicom.dcmread(io.BytesIO(raw)).InstanceNumber == 1 and im2 == (folder / "IM2.dcm").read_bytes()
    single = open_single(series.files[0], readers)
    assert b"".join(single) == raw and single.length == len(raw)

    body = open_frames(j2k.files[0].path, readers, [3, 1, 2], None, "instance")
    parts = multipart_parts(b"".join(body), body.content_type)
    assert [data for _, data in parts] == [frames[2], frames[0], frames[1]]
    assert {kind for kind, _ in parts} == {"image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"}
    smb.close_connections()
