"""WADO-RS frames and bulk data over a real socket with dicomweb-client: native and encapsulated
(RLE, JPEG 2000 with a Basic or Extended Offset Table or none) multi-frame instances give back exactly the
frames in their files; BulkDataURIs in metadata lead to the values; raw datasets without a file meta
header come out as files standard clients parse; 406 for a transfer syntax pacsindex cannot send; a
Warning when files of a series went missing since indexing."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_live import LiveDicomWeb, multipart_parts, serve, write_jpeg2000, write_native, write_rle
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from conftest import make_dataset, write_dicom

STUDY = "1.9.1"
NATIVE, RLE, J2K, RAW, GONE = "1.9.1.1", "1.9.1.2", "1.9.1.3", "1.9.1.4", "1.9.1.5"
RLE_TS, J2K_TS = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90"


@dataclass
class World:
    live: LiveDicomWeb
    archive: Path
    client: DICOMwebClient
    j2k_frames: dict[str, list[bytes]]

    def sop(self, path: Path) -> str:
        return str(pydicom.dcmread(path, stop_before_pixels=True, force=True).SOPInstanceUID)

    def frames_of(self, path: Path) -> list[bytes]:
        ds = pydicom.dcmread(path)
        n = int(ds.get("NumberOfFrames", 1))
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            return list(generate_frames(ds.PixelData, number_of_frames=n))
        size = len(ds.PixelData) // n
        return [ds.PixelData[i * size : (i + 1) * size] for i in range(n)]


def ids(series: str, instance: int = 1) -> dict[str, object]:
    return dict(
        PatientName="DLAMINI^THANDI",
        PatientID="PID-D",
        StudyInstanceUID=STUDY,
        SeriesInstanceUID=series,
        SeriesNumber=int(series.rsplit(".", 1)[1]),
        InstanceNumber=instance,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("frames")
    archive = base / "archive"
    write_native(archive / "native" / "MF.dcm", frames=3, rows=16, **ids(NATIVE))
    write_rle(archive / "rle" / "BOT.dcm", bot=True, **ids(RLE, 1))
    write_rle(archive / "rle" / "NOBOT.dcm", bot=False, **ids(RLE, 2))
    j2k = {}
    for i, layout in enumerate(("bot", "eot", "none")):
        path, frames = write_jpeg2000(archive / "j2k" / f"{layout}.dcm", layout=layout, **ids(J2K, i + 1))
        j2k[layout] = frames
    raw = make_dataset(rows=8, private_blob=5000, **ids(RAW))
    icon = Dataset()  # an ultrasound-style icon: bulk data inside a sequence
    icon.Rows = icon.Columns = 64
    icon.add_new(0x7FE00010, "OB", bytes(range(256)) * 16)
    raw.IconImageSequence = [icon]
    write_dicom(archive / "raw" / "OLD0001", raw, preamble=False)
    for i in range(3):
        write_dicom(archive / "gone" / f"IM{i}", **ids(GONE, i + 1))
    with serve(base, archive) as live:
        client = DICOMwebClient(url=live.dicomweb, headers=live.auth)
        yield World(live, archive, client, j2k)


def test_native_frames_byte_for_byte(world: World) -> None:
    path = world.archive / "native" / "MF.dcm"
    sop, expected = world.sop(path), world.frames_of(path)
    assert len(expected) == 3 and len(set(expected)) == 3
    got = world.client.retrieve_instance_frames(STUDY, NATIVE, sop, frame_numbers=[3, 1])
    assert got == [expected[2], expected[0]]
    assert world.client.retrieve_instance_frames(STUDY, NATIVE, sop, frame_numbers=[2]) == [expected[1]]
    r = httpx.get(
        f"{world.live.dicomweb}/studies/{STUDY}/series/{NATIVE}/instances/{sop}/frames/1,2,3",
        headers=world.live.auth,
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith('multipart/related; type="application/octet-stream"')
    assert b"Content-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n" in r.content
    # What OHIF's wadors loader asks for.
    ohif = {
        **world.live.auth,
        "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*",
    }
    r = httpx.get(
        f"{world.live.dicomweb}/studies/{STUDY}/series/{NATIVE}/instances/{sop}/frames/2", headers=ohif
    )
    assert r.status_code == 200 and expected[1] in r.content
    # One frame may come bare when only that is accepted.
    bare = {**world.live.auth, "Accept": "application/octet-stream"}
    r = httpx.get(
        f"{world.live.dicomweb}/studies/{STUDY}/series/{NATIVE}/instances/{sop}/frames/3", headers=bare
    )
    assert r.status_code == 200 and r.content == expected[2]
    assert r.headers["content-type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    # Frames of a raw dataset (no file meta): found all the same.
    raw = world.archive / "raw" / "OLD0001"
    pixels = pydicom.dcmread(raw, force=True).PixelData
    assert world.client.retrieve_instance_frames(STUDY, RAW, world.sop(raw), frame_numbers=[1]) == [pixels]


@pytest.mark.parametrize("name", ["BOT.dcm", "NOBOT.dcm"])
def test_rle_frames_as_stored(world: World, name: str) -> None:
    path = world.archive / "rle" / name
    sop, expected = world.sop(path), world.frames_of(path)
    got = world.client.retrieve_instance_frames(
        STUDY, RLE, sop, frame_numbers=[4, 2, 1], media_types=(("image/dicom-rle", RLE_TS),)
    )
    assert got == [expected[3], expected[1], expected[0]]
    r = httpx.get(
        f"{world.live.dicomweb}/studies/{STUDY}/series/{RLE}/instances/{sop}/frames/3",
        headers={
            **world.live.auth,
            "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*",
        },
    )
    assert (
        r.status_code == 200
        and f"Content-Type: image/dicom-rle; transfer-syntax={RLE_TS}".encode() in r.content
    )
    assert expected[2] in r.content


@pytest.mark.parametrize("layout", ["bot", "eot", "none"])
def test_jpeg2000_frames_as_stored(world: World, layout: str) -> None:
    sop = world.sop(world.archive / "j2k" / f"{layout}.dcm")
    expected = world.j2k_frames[layout]
    got = world.client.retrieve_instance_frames(
        STUDY, J2K, sop, frame_numbers=[1, 2, 3], media_types=(("image/jp2", J2K_TS),)
    )
    assert got == expected
    assert world.client.retrieve_instance_frames(
        STUDY, J2K, sop, frame_numbers=[2], media_types=(("image/jp2", "*"),)
    ) == [expected[1]]


def test_frames_that_cannot_be_sent_are_refused_with_a_reason(world: World) -> None:
    sop = world.sop(world.archive / "j2k" / "bot.dcm")
    url = f"{world.live.dicomweb}/studies/{STUDY}/series/{J2K}/instances/{sop}/frames"
    h = world.live.auth
    # Uncompressed frames of a JPEG 2000 instance would need transcoding: 406, not ignored.
    for accept in (
        'multipart/related; type="application/octet-stream"',
        'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1',
        'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.4.91',
        'multipart/related; type="image/jpeg"',
    ):
        r = httpx.get(url + "/1", headers={**h, "Accept": accept})
        assert r.status_code == 406 and "does not transcode" in r.json()["detail"], accept
    # dicomweb-client's default (type="*/*") and OHIF's (transfer-syntax=*) take them as stored.
    assert world.client.retrieve_instance_frames(STUDY, J2K, sop, frame_numbers=[1]) == [
        world.j2k_frames["bot"][0]
    ]
    assert httpx.get(url + "/4", headers=h).status_code == 404
    assert "3 frame" in httpx.get(url + "/4", headers=h).json()["detail"]
    for bad in ("0", "one", "1,,2", "-1"):
        assert httpx.get(url + "/" + bad, headers=h).status_code == 400, bad
    assert httpx.get(url + "/1").status_code == 401


def test_instances_in_another_transfer_syntax_are_406(world: World) -> None:
    h = world.live.auth
    series = f"{world.live.dicomweb}/studies/{STUDY}/series/{J2K}"
    for accept in (
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1',
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
    ):
        r = httpx.get(series, headers={**h, "Accept": accept})
        assert r.status_code == 406 and J2K_TS in r.json()["detail"], r.text
        assert (
            httpx.get(f"{world.live.dicomweb}/studies/{STUDY}", headers={**h, "Accept": accept}).status_code
            == 406
        )
    sop = world.sop(world.archive / "j2k" / "eot.dcm")
    bare = {**h, "Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"}
    assert httpx.get(f"{series}/instances/{sop}", headers=bare).status_code == 406
    ok = {**h, "Accept": f'multipart/related; type="application/dicom"; transfer-syntax={J2K_TS}'}
    r = httpx.get(series, headers=ok)
    assert r.status_code == 200 and len(parse_multipart_any(r)) == 3
    # Several ranges: the stored one among them is enough.
    both = {
        **h,
        "Accept": ok["Accept"]
        + ', multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1',
    }
    assert (
        httpx.get(f"{world.live.dicomweb}/studies/{STUDY}/series/{NATIVE}", headers=both).status_code == 200
    )
    params = {"requestType": "WADO", "studyUID": STUDY, "seriesUID": J2K, "objectUID": sop}
    assert (
        httpx.get(
            f"{world.live.dicomweb}/wado",
            params={**params, "transferSyntax": "1.2.840.10008.1.2.1"},
            headers=h,
        ).status_code
        == 406
    )
    assert (
        httpx.get(
            f"{world.live.dicomweb}/wado", params={**params, "transferSyntax": J2K_TS}, headers=h
        ).status_code
        == 200
    )


def parse_multipart_any(r: httpx.Response) -> list[bytes]:
    return [data for _, data in multipart_parts(r.content, r.headers["content-type"])]


def test_raw_datasets_go_out_as_part10_files(world: World) -> None:
    path = world.archive / "raw" / "OLD0001"
    raw = path.read_bytes()
    assert raw[128:132] != b"DICM" and raw[:2] == b"\x08\x00"  # no preamble, no meta: an old archive's file
    sop = world.sop(path)
    [ds] = world.client.retrieve_series(STUDY, RAW)  # dicomweb-client raised InvalidDicomError here before
    assert ds.SOPInstanceUID == sop and ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert (
        ds.file_meta.MediaStorageSOPInstanceUID == sop
        and ds.PixelData == pydicom.dcmread(path, force=True).PixelData
    )
    one = world.client.retrieve_instance(STUDY, RAW, sop)
    assert one.PatientName == "DLAMINI^THANDI"
    url = f"{world.live.dicomweb}/studies/{STUDY}/series/{RAW}/instances/{sop}"
    bare = httpx.get(url, headers={**world.live.auth, "Accept": "application/dicom"})
    params = {"requestType": "WADO", "studyUID": STUDY, "seriesUID": RAW, "objectUID": sop}
    wado = httpx.get(f"{world.live.dicomweb}/wado", params=params, headers=world.live.auth)
    for r in (bare, wado):
        assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
        assert r.content[128:132] == b"DICM" and r.content.endswith(raw)  # the file itself, unchanged
        wrapped = pydicom.dcmread(io.BytesIO(r.content))  # no force: a proper Part 10 file
        assert wrapped.SOPInstanceUID == sop
    # A proper file goes out exactly as stored, with its exact length.
    native = world.archive / "native" / "MF.dcm"
    r = httpx.get(
        f"{world.live.dicomweb}/studies/{STUDY}/series/{NATIVE}/instances/{world.sop(native)}",
        headers={**world.live.auth, "Accept": "application/dicom"},
    )
    assert r.content == native.read_bytes() and int(r.headers["content-length"]) == len(r.content)


def test_bulk_data_uris_lead_to_the_values(world: World) -> None:
    raw = world.archive / "raw" / "OLD0001"
    sop = world.sop(raw)
    [meta] = world.client.retrieve_series_metadata(STUDY, RAW)
    base = f"/dicom-web/studies/{STUDY}/series/{RAW}/instances/{sop}"
    blob, pixels = meta["00091000"], meta["7FE00010"]
    assert blob["BulkDataURI"].endswith(base + "/bulkdata/00091000") and "InlineBinary" not in blob
    assert pixels == {"vr": "OW", "BulkDataURI": pixels["BulkDataURI"]}
    assert pixels["BulkDataURI"].endswith(base + "/bulkdata/7FE00010")
    url = world.live.dicomweb + pixels["BulkDataURI"].split("/dicom-web", 1)[1]
    ds = pydicom.dcmread(raw, force=True)
    assert world.client.retrieve_bulkdata(url) == [ds.PixelData]
    blob_url = world.live.dicomweb + blob["BulkDataURI"].split("/dicom-web", 1)[1]
    assert world.client.retrieve_bulkdata(blob_url) == [b"\x00" * 5000]
    r = httpx.get(blob_url, headers={**world.live.auth, "Accept": "application/octet-stream"})
    assert r.content == b"\x00" * 5000 and r.headers["content-length"] == "5000"
    # Encapsulated pixel data: one part per frame, as stored.
    j2k = world.archive / "j2k" / "none.dcm"
    j2k_url = (
        f"{world.live.dicomweb}/studies/{STUDY}/series/{J2K}/instances/{world.sop(j2k)}/bulkdata/7FE00010"
    )
    got = world.client.retrieve_bulkdata(j2k_url, media_types=(("image/jp2", J2K_TS),))
    assert got == world.j2k_frames["none"]
    # Inside a sequence: tag/item/tag.
    assert meta["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"].endswith("/bulkdata/00880200/0/7FE00010")
    icon_url = blob_url.replace("00091000", "00880200/0/7FE00010")
    assert world.client.retrieve_bulkdata(icon_url) == [bytes(range(256)) * 16]
    assert meta["00083002"]["Value"] == ["1.2.840.10008.1.2"]  # detected: the raw file is implicit VR
    h = world.live.auth
    assert httpx.get(blob_url.replace("00091000", "00100010"), headers=h).status_code == 404
    assert httpx.get(blob_url.replace("00091000", "00880200/1/7FE00010"), headers=h).status_code == 404
    assert httpx.get(blob_url.replace("00091000", "zz"), headers=h).status_code == 400


def test_a_series_with_files_gone_says_so(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = world.archive / "gone" / "IM1"
    moved = tmp_path / "IM1"
    gone.rename(moved)
    try:
        with caplog.at_level(logging.INFO):
            r = httpx.get(f"{world.live.dicomweb}/studies/{STUDY}/series/{GONE}", headers=world.live.auth)
        assert r.status_code == 200 and len(parse_multipart_any(r)) == 2
        assert r.headers["warning"] == '299 pacsindex "1 of 3 instances could not be read and are left out"'
        assert any("1 of 3 files cannot be read now" in rec.getMessage() for rec in caplog.records)
        study = httpx.get(f"{world.live.dicomweb}/studies/{STUDY}", headers=world.live.auth)
        assert "1 of " in study.headers["warning"]
        with pytest.raises(requests.HTTPError):
            world.client.retrieve_instance(STUDY, GONE, world.sop(moved))
        full = httpx.get(f"{world.live.dicomweb}/studies/{STUDY}/series/{NATIVE}", headers=world.live.auth)
        assert "warning" not in full.headers
    finally:
        moved.rename(gone)
