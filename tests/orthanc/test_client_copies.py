"""Send to Orthanc (a real Orthanc) when the archive holds several copies of one instance: a damaged first
copy does not make the instance "already there", the next intact copy is sent; and `send-to-orthanc --url`
at something that is not an Orthanc says so instead of "HTTP 404"."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli, write_dicom
from orthanc_server import OrthancServer, orthanc_fixture  # noqa: F401 - the `orthanc` fixture
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.orthanc import client as sending
from pacsindex.orthanc.client import Connection, OrthancClient, send_series
from pacsindex.sources.files import source_for

pytestmark = pytest.mark.orthanc
SERIES = "1.2.826.99.12.1"


def archive_with_copies(root: Path, db: Path) -> tuple[Path, str]:
    """Three instances; the first also kept as a second file (a re-import beside the original)."""
    folder = root / "CT"
    for i in range(3):
        write_dicom(
            folder / f"IM{i:03d}.dcm",
            PatientName="DLAMINI^SIPHO",
            PatientID="PID-12",
            StudyInstanceUID="1.2.826.99.12",
            SeriesInstanceUID=SERIES,
            InstanceNumber=i + 1,
        )
    shutil.copyfile(folder / "IM000.dcm", folder / "IM000b.dcm")
    assert run_index(db, [source_for(str(root))], ScanOptions(workers=1)).state == "completed"
    with sqlite3.connect(db) as conn:
        (key,) = conn.execute(
            "SELECT SeriesKey FROM series WHERE SeriesInstanceUID = ?", (SERIES,)
        ).fetchone()
    conn.close()
    return folder, key


def connection(server: OrthancServer) -> Connection:
    return Connection(server.url, server.user, server.password)


def test_a_damaged_first_copy_leaves_the_instance_to_the_next_copy(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    orthanc.clear()
    folder, key = archive_with_copies(tmp_path / "archive", tmp_path / "i.db")
    uids = {str(pydicom_uid(folder / f"IM{i:03d}.dcm")) for i in range(3)}
    (folder / "IM000.dcm").write_bytes(b"damaged after indexing: not DICOM any more")

    with OrthancClient(connection(orthanc)) as client:
        result = send_series(tmp_path / "i.db", key, client)
    assert orthanc.instance_uids() == uids, "the intact copy of the first instance reached Orthanc"
    assert (result.total, result.sent, result.failed) == (4, 3, 0)
    assert result.skipped == 1 and result.failures == ()


def test_when_every_copy_fails_nothing_counts_as_there(orthanc: OrthancServer, tmp_path: Path) -> None:
    orthanc.clear()
    folder, key = archive_with_copies(tmp_path / "archive", tmp_path / "i.db")
    first = str(pydicom_uid(folder / "IM000.dcm"))
    (folder / "IM000.dcm").write_bytes(b"damaged")
    (folder / "IM000b.dcm").unlink()

    with OrthancClient(connection(orthanc)) as client:
        result = send_series(tmp_path / "i.db", key, client)
    assert (result.sent, result.skipped, result.failed) == (2, 0, 2)
    assert first not in orthanc.instance_uids()

    # The copy is back (restored from backup): sending again sends it, it was never "already there".
    write_dicom(
        folder / "IM000b.dcm",
        pydicom_dataset(folder / "IM001.dcm", SOPInstanceUID=first, InstanceNumber=1),
    )
    with OrthancClient(connection(orthanc)) as client:
        again = send_series(tmp_path / "i.db", key, client)
    assert first in orthanc.instance_uids()
    assert (again.sent, again.skipped, again.failed) == (1, 3, 0)  # the damaged copy is covered


def test_send_to_something_that_is_not_orthanc_says_so(orthanc: OrthancServer, tmp_path: Path) -> None:
    _, key = archive_with_copies(tmp_path / "archive", tmp_path / "i.db")
    not_orthanc = orthanc.url + "/app"  # Orthanc's web page files: a web server, but not its REST API
    env = {sending.PASSWORD_ENV: orthanc.password}
    out = run_cli(
        "send-to-orthanc", key, "--db", str(tmp_path / "i.db"), "--url", not_orthanc, "--user", orthanc.user,
        env=env, check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "is not an Orthanc REST API" in out.stderr and "HTTP 404" not in out.stderr
    assert "Traceback" not in out.stderr


def pydicom_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def pydicom_dataset(path: Path, **changes: object):  # type: ignore[no-untyped-def]
    import pydicom

    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds
