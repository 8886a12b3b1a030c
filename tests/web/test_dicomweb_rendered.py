"""DICOMweb rendered resources and thumbnails, asked for by a real client (dicomweb-client) with an API
token: an instance drawn as PNG or JPEG with the window asked for (checked by pixels), one frame of a
multi-frame instance, a JPEG 2000 instance, a series' middle instance, thumbnails with a viewport, 406 for
a media type pacsindex does not draw, 400 for a bad window, and the audit log."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from argon2 import PasswordHasher
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless

from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

PASSWORD = "correct horse battery"
STUDY, SERIES = "1.2.826.0.1.3680043.99.1", "1.2.826.0.1.3680043.99.1.1"


def ct(number: int, hu: list[int], *, j2k: bool = False) -> Dataset:
    """A 64x64 CT instance, one frame per HU value (each frame uniform)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{SERIES}.{number}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, SERIES
    ds.PatientName, ds.PatientID, ds.Modality, ds.StudyDate = "NKOSI^THABO", "PID-R", "CT", "20240301"
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    if len(hu) > 1:
        ds.NumberOfFrames = len(hu)
    ds.PixelData = np.stack([np.full((64, 64), v + 1024, np.uint16) for v in hu]).tobytes()
    if j2k:
        ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    return ds


@dataclass
class Live:
    url: str
    token: str
    admin: httpx.Client

    @property
    def client(self) -> DICOMwebClient:
        return DICOMwebClient(url=self.url + "/dicom-web", headers={"Authorization": f"Bearer {self.token}"})

    def get(self, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return httpx.get(self.url + "/dicom-web" + path, headers=headers, timeout=60, **kw)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("dicomweb-rendered")
    archive = base / "archive"
    archive.mkdir()
    for number, hu, j2k in ((1, [40], False), (2, [-1000, 40, 1500], False), (3, [1500], True)):
        ct(number, hu, j2k=j2k).save_as(archive / f"IM{number}.dcm", enforce_file_format=True)
    settings = Settings(db=base / "pacsindex.db", workers=1, render_workers=1)
    run_index(settings.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.state.pacsindex.accounts.add_user("boss", PASSWORD, admin=True)
    with ThreadedServer(app, settings) as server:
        admin = httpx.Client(base_url=server.url, timeout=60)
        csrf = {
            "X-CSRF-Token": admin.post("/auth/signin", json={"name": "boss", "password": PASSWORD}).json()[
                "csrf_token"
            ]
        }
        token = admin.post("/api/tokens", json={"name": "viewer"}, headers=csrf).json()["token"]
        yield Live(server.url, token, admin)
        admin.close()


def grey(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)


def test_an_instance_rendered_as_png_and_jpeg_with_a_window(live: Live) -> None:
    png = live.client.retrieve_instance_rendered(
        STUDY, SERIES, f"{SERIES}.1", media_types=("image/png",), params={"window": "40,400,linear"}
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 120 <= grey(png).mean() <= 135  # 40 HU mid-grey
    dark = live.client.retrieve_instance_rendered(
        STUDY,
        SERIES,
        f"{SERIES}.1",
        media_types=("image/jpeg",),
        params={"window": "1000,100", "quality": "80"},
    )
    assert dark[:2] == b"\xff\xd8" and grey(dark).mean() < 5


def test_a_frame_and_a_jpeg_2000_instance(live: Live) -> None:
    frames = [
        grey(
            live.client.retrieve_instance_frames_rendered(
                STUDY, SERIES, f"{SERIES}.2", [n], media_types=("image/png",), params={"window": "40,400"}
            )
        ).mean()
        for n in (1, 2, 3)
    ]
    assert frames[0] < 5 and 120 <= frames[1] <= 135 and frames[2] > 250
    j2k = live.client.retrieve_instance_rendered(
        STUDY, SERIES, f"{SERIES}.3", media_types=("image/png",), params={"window": "40,400"}
    )
    assert grey(j2k).mean() > 250


def test_series_rendered_and_thumbnails(live: Live) -> None:
    middle = live.client.retrieve_series_rendered(STUDY, SERIES, media_types=("image/png",))
    assert Image.open(io.BytesIO(middle)).size == (64, 64)
    r = live.get(f"/studies/{STUDY}/series/{SERIES}/thumbnail", headers={"Accept": "image/jpeg"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (64, 64)  # small already: not enlarged
    r = live.get(
        f"/studies/{STUDY}/series/{SERIES}/instances/{SERIES}.1/thumbnail", params={"viewport": "32,32"}
    )
    assert Image.open(io.BytesIO(r.content)).size == (32, 32)
    assert live.get(f"/studies/{STUDY}/thumbnail").status_code == 200


def test_refusals_and_the_audit_log(live: Live) -> None:
    instance = f"/studies/{STUDY}/series/{SERIES}/instances/{SERIES}.1/rendered"
    assert live.get(instance, headers={"Accept": "image/gif"}).status_code == 406
    assert live.get(instance, params={"window": "forty"}).status_code == 400
    assert live.get(instance, params={"viewport": "0,0"}).status_code == 400
    assert live.get(f"/studies/{STUDY}/series/{SERIES}/instances/9.9.9/rendered").status_code == 404
    assert httpx.get(live.url + "/dicom-web" + instance).status_code == 401
    audit = live.admin.get("/api/audit", params={"limit": 500}).json()
    whats = {e["detail"].get("what") for e in audit if e["action"] == "dicomweb_retrieve"}
    assert {"rendered instance", "thumbnail series"} <= whats
