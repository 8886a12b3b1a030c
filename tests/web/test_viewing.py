"""The image routes over a real socket, for staff and for share recipients: a series' images in viewing
order, images drawn with the file's window or the one asked for (checked by pixels), thumbnails kept in
the data directory (not beside the archive) and served from there, a placeholder and a reason for a file
gone since indexing, the audit log; and a recipient who sees exactly what was shared: neighbouring series
of the same study, other patients' series and their image ids all answer 404 and are logged."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree
from support_web import LiveServer


@dataclass
class Live:
    url: str
    app: Any
    settings: Settings
    archive: Path
    staff: httpx.Client
    csrf: dict[str, str]
    admin: httpx.Client
    series: list[dict[str, Any]]
    server: LiveServer

    def ct(self) -> dict[str, Any]:
        """The CT series with the most images in a study that has other series too."""
        studies: dict[str, int] = {}
        for s in self.series:
            studies[s["StudyInstanceUID"]] = studies.get(s["StudyInstanceUID"], 0) + 1
        cts = [s for s in self.series if s["Modality"] == "CT" and studies[s["StudyInstanceUID"]] > 1]
        return max(cts, key=lambda s: s["file_count"])

    def anonymous(self) -> httpx.Client:
        return self.server.client()  # closed with the server


@pytest.fixture(scope="module")
def live(live_server: Callable[..., LiveServer], tmp_path_factory: pytest.TempPathFactory) -> Live:
    base = tmp_path_factory.mktemp("viewing")
    archive = base / "archive"
    write_sample(archive, patients=3, files=120)
    write_dicom(
        archive / "GONE" / "IM1.dcm",
        PatientName="GONE^FILE",
        PatientID="PID-G",
        rows=16,
        StudyInstanceUID="5.5.5",
        SeriesInstanceUID="5.5.5.1",
    )
    settings = Settings(db=base / "data" / "pacsindex.db", workers=1, render_workers=1, thumbnail_cache_mb=3)
    run_index(settings.db, [LocalTree(str(archive))], ScanOptions(workers=1))
    (archive / "GONE" / "IM1.dcm").unlink()  # indexed, then moved away on the NAS
    server = live_server(settings=settings, users={"thandi": False, "boss": True})
    staff, csrf = server.sign_in("thandi")
    admin, _ = server.sign_in("boss")
    series = staff.get("/api/search", params={"limit": 500}).json()
    return Live(server.url, server.app, settings, archive, staff, csrf, admin, series, server)


def picture(r: httpx.Response) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] in ("image/png", "image/jpeg")
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("L"), dtype=float)


def audit(live: Live, action: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        found = [
            e for e in live.admin.get("/api/audit", params={"limit": 500}).json() if e["action"] == action
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


# -- staff ------------------------------------------------------------------------------------------------


def test_a_series_opens_in_viewing_order_with_its_study_and_is_audited(live: Live) -> None:
    ct = live.ct()
    r = live.staff.get(f"/api/series/{ct['SeriesKey']}/images")
    assert r.status_code == 200
    listing = r.json()
    numbers = [i["InstanceNumber"] for i in listing["images"]]
    assert numbers == sorted(numbers) and len(numbers) == ct["file_count"]
    assert listing["series"]["PatientName"] == ct["PatientName"]
    strip = {s["SeriesKey"] for s in listing["study"]}
    same_study = {s["SeriesKey"] for s in live.series if s["StudyInstanceUID"] == ct["StudyInstanceUID"]}
    assert strip == same_study and len(strip) > 1
    entries = audit(live, "view_series")
    assert any(e["detail"].get("SeriesKey") == ct["SeriesKey"] and e["user"] == "thandi" for e in entries)
    assert live.anonymous().get(f"/api/series/{ct['SeriesKey']}/images").status_code == 401


def test_images_are_drawn_with_the_files_window_or_the_one_asked_for(live: Live) -> None:
    ct = live.ct()
    image = live.staff.get(f"/api/series/{ct['SeriesKey']}/images").json()["images"][0]
    r = live.staff.get(image["url"])
    own = picture(r)
    assert r.headers["x-window"] in ("-600 1500", "40 400")  # the sample CT's own window
    assert "x-slice-position" in r.headers and r.headers["x-frames"] == "1"
    lung = picture(live.staff.get(image["url"], params={"wc": -600, "ww": 1500}))
    bone = picture(live.staff.get(image["url"], params={"wc": 3000, "ww": 1000}))
    assert lung.mean() > bone.mean() + 20  # a bone window makes soft tissue dark
    small = picture(live.staff.get(image["url"], params={"size": 16, "format": "jpeg"}))
    assert max(small.shape) == 16 and max(own.shape) > 16


def test_thumbnails_are_kept_in_the_data_directory_and_served_from_it(live: Live) -> None:
    ct = live.ct()
    thumbs = live.settings.data_path / "thumbnails"
    before = set(thumbs.glob("*.jpg")) if thumbs.exists() else set()
    r = live.staff.get(f"/api/series/{ct['SeriesKey']}/thumbnail")
    assert r.headers["content-type"] == "image/jpeg" and "x-render-problem" not in r.headers
    assert picture(r).std() > 5
    made = set(thumbs.glob("*.jpg")) - before
    assert len(made) == 1
    assert not [p for p in live.archive.rglob("*") if p.suffix == ".jpg"]  # nothing written beside the files
    again = live.staff.get(f"/api/series/{ct['SeriesKey']}/thumbnail")
    assert again.content == r.content
    assert live.app.state.viewing.thumbnails.max_bytes == 3 << 20  # thumbnail_cache_mb = 3
    assert live.app.state.viewing.renderer.workers == 1  # render_workers = 1


def test_a_file_gone_since_indexing_gives_a_placeholder_and_a_reason(live: Live) -> None:
    gone = next(s for s in live.series if s["PatientID"] == "PID-G")
    image = live.staff.get(f"/api/series/{gone['SeriesKey']}/images").json()["images"][0]
    r = live.staff.get(image["url"], params={"size": 128})
    assert r.status_code == 200 and "cannot be read" in r.headers["x-render-problem"]
    assert picture(r).shape == (128, 128)
    thumb = live.staff.get(f"/api/series/{gone['SeriesKey']}/thumbnail")
    assert thumb.status_code == 200 and "x-render-problem" in thumb.headers
    assert live.staff.get("/api/images/999999999/render").status_code == 404


def test_the_viewer_page_is_served_without_patient_data(live: Live) -> None:
    ct = live.ct()
    anon = live.anonymous()  # closed with the server
    page = anon.get(f"/viewer/{ct['SeriesKey']}")
    assert page.status_code == 200 and "/static/viewer.js" in page.text
    assert f"/api/series/{ct['SeriesKey']}/images" in page.text
    assert str(ct["PatientID"]) not in page.text
    for name in ("viewer.js", "viewer.css"):
        assert anon.get(f"/static/{name}").status_code == 200


# -- share recipients ---------------------------------------------------------------------------------------


def share(live: Live, key: str, **body: Any) -> str:
    r = live.staff.post("/api/shares", json={"SeriesKey": key, **body}, headers=live.csrf)
    assert r.status_code == 201, r.text
    return str(r.json()["url"]).rsplit("/share/", 1)[1]


def test_a_recipient_sees_the_shared_series_and_nothing_else(live: Live) -> None:
    ct = live.ct()
    token = share(live, ct["SeriesKey"])
    recipient = live.anonymous()
    page = recipient.get(f"/share/{token}/view")
    assert page.status_code == 200 and "/static/viewer.js" in page.text
    assert 'data-format="jpeg"' in page.text  # a recipient's phone gets JPEGs, a tenth of the bytes
    listing = recipient.get(f"/share/{token}/view/series/{ct['SeriesKey']}").json()
    assert [s["SeriesKey"] for s in listing["study"]] == [ct["SeriesKey"]]  # no neighbours in the strip
    assert listing["series"]["PatientName"] is None  # no passcode: no name, as on the landing page
    assert len(listing["images"]) == ct["file_count"]
    assert picture(recipient.get(listing["images"][0]["url"])).std() > 1
    assert recipient.get(f"/share/{token}/view/series/{ct['SeriesKey']}/thumbnail").status_code == 200

    neighbours = [s for s in live.series if s["StudyInstanceUID"] == ct["StudyInstanceUID"] and s is not ct]
    others = [s for s in live.series if s["PatientID"] != ct["PatientID"]]
    for other in (neighbours[0], others[0]):
        key = other["SeriesKey"]
        assert recipient.get(f"/share/{token}/view/series/{key}").status_code == 404
        assert recipient.get(f"/share/{token}/view/series/{key}/thumbnail").status_code == 404
        foreign = live.staff.get(f"/api/series/{key}/images").json()["images"][0]["id"]
        assert recipient.get(f"/share/{token}/view/images/{foreign}/render").status_code == 404
        assert recipient.get(f"/api/images/{foreign}/render").status_code == 401  # staff routes: no
        assert recipient.get(f"/api/series/{key}/images").status_code == 401
    assert recipient.get(f"/share/{token}x/view/series/{ct['SeriesKey']}").status_code == 404

    made = next(s for s in live.staff.get("/api/shares").json() if s["SeriesKey"] == ct["SeriesKey"])
    log = live.staff.get(f"/api/shares/{made['id']}/log", params={"limit": 500}).json()
    assert any(e["kind"] == "view" and e["outcome"] == "ok" for e in log)
    # like refusals from one address share one row, with a count
    assert sum(e["repeats"] for e in log if e["outcome"] == "not_found") == 6
    entries = audit(live, "share_access")
    assert any(
        e["detail"].get("kind") == "view" and e["detail"].get("share_id") == made["id"] for e in entries
    )


def test_a_passcode_guards_the_viewer_and_a_withdrawn_link_shows_nothing(live: Live) -> None:
    ct = live.ct()
    token = share(live, ct["SeriesKey"], passcode="open sesame 1")
    recipient = live.anonymous()
    assert "passcode" in recipient.get(f"/share/{token}/view").text
    images = f"/share/{token}/view/series/{ct['SeriesKey']}"
    assert recipient.get(images).status_code == 403  # the passcode first
    r = recipient.post(f"/share/{token}", data={"passcode": "open sesame 1"}, follow_redirects=False)
    assert r.status_code == 303
    listing = recipient.get(images).json()
    assert listing["series"]["PatientName"] == ct["PatientName"]  # behind a passcode the name is shown
    made = next(
        s
        for s in live.staff.get("/api/shares").json()
        if s["SeriesKey"] == ct["SeriesKey"] and s["has_passcode"]
    )
    live.staff.post(f"/api/shares/{made['id']}/revoke", headers=live.csrf).raise_for_status()
    assert recipient.get(images).status_code == 410
    assert recipient.get(listing["images"][0]["url"]).status_code == 410
    assert recipient.get(f"/share/{token}/view").status_code == 410
