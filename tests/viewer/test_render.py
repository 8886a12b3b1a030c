"""Rendering real encoded files, checked by their pixels: every compression an archive holds (uncompressed,
RLE, JPEG baseline and lossless, JPEG-LS, JPEG 2000 grey and colour), the modality LUT (rescale and a
Modality LUT Sequence), the file's window, a window asked for and an automatic one, MONOCHROME1 inverted,
colour kept (RGB, YBR_FULL_422, J2K with the reversible colour transform, 16-bit RGB, palette), frames of
a multi-frame image, a raw dataset without file meta, and a clear placeholder for what cannot be decoded.

Files are made with pydicom's encoders (RLE, JPEG 2000 via pylibjpeg-openjpeg), GDCM (JPEG Lossless),
Pillow (JPEG baseline) or taken from pydicom's own test files (JPEG-LS, YBR_FULL_422, palette)."""

from __future__ import annotations

import io
from pathlib import Path

import gdcm
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from pacsindex.viewer.render import JPEG, PNG, RenderRequest, render_bytes

AIR, WATER, BONE = -1000, 40, 1500  # Hounsfield units of the three bands of the test CT


def ct_dataset(**extra: object) -> Dataset:
    """A 64x64 CT: left third air, middle third soft tissue, right third bone, stored with intercept -1024."""
    hu = np.empty((64, 64), dtype=np.int32)
    hu[:, :21], hu[:, 21:43], hu[:, 43:] = AIR, WATER, BONE
    ds = _base(CTImageStorage)
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.PixelData = (hu + 1024).astype(np.uint16).tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def rgb_dataset(arr: np.ndarray, bits: int = 8) -> Dataset:
    ds = _base(SecondaryCaptureImageStorage)
    ds.Modality = "OT"
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB"
    ds.PixelData = arr.astype(np.uint16 if bits == 16 else np.uint8).tobytes()
    return ds


def quadrants() -> np.ndarray:
    """Red, green, blue and white quadrants."""
    arr = np.zeros((64, 64, 3), dtype=np.uint8)
    arr[:32, :32] = (255, 0, 0)
    arr[:32, 32:] = (0, 255, 0)
    arr[32:, :32] = (0, 0, 255)
    arr[32:, 32:] = (255, 255, 255)
    return arr


def _base(sop_class: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 1
    return ds


def encoded(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def gdcm_transcode(ds: Dataset, tmp_path: Path, syntax: int) -> bytes:
    """The dataset re-encoded by GDCM (a real JPEG Lossless encoder)."""
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    src.write_bytes(encoded(ds))
    reader = gdcm.ImageReader()
    reader.SetFileName(str(src))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(syntax))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(dst))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()
    return dst.read_bytes()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def draw(data: bytes, **request: object) -> np.ndarray:
    rendered = render_bytes(data, RenderRequest(**request))  # type: ignore[arg-type]
    assert rendered.problem is None, rendered.problem
    return pixels(rendered.body)


def bands(grey: np.ndarray) -> tuple[int, int, int]:
    """The grey level of the air, soft tissue and bone bands."""
    return int(grey[32, 10]), int(grey[32, 32]), int(grey[32, 54])


# -- windows -------------------------------------------------------------------------------------------


def test_a_window_asked_for_is_applied_in_hounsfield_units() -> None:
    data = encoded(ct_dataset())
    soft = bands(draw(data, window=(40, 400)))
    assert soft[0] == 0 and soft[2] == 255 and 120 <= soft[1] <= 135  # air black, bone white, tissue mid-grey
    lung = bands(draw(data, window=(-600, 1500)))
    assert lung[0] > 20 and lung[1] > soft[1]  # a lung window shows air as grey, tissue lighter
    bone = bands(draw(data, window=(1000, 10)))
    assert bone == (0, 0, 255)


def test_the_files_own_window_is_used_when_none_is_asked_for() -> None:
    data = encoded(ct_dataset(WindowCenter="1000", WindowWidth="10"))
    rendered = render_bytes(data, RenderRequest())
    assert rendered.window == (1000.0, 10.0)
    assert bands(pixels(rendered.body)) == (0, 0, 255)


def test_an_automatic_window_spans_the_images_values_when_the_file_has_none() -> None:
    rendered = render_bytes(encoded(ct_dataset()), RenderRequest())
    air, tissue, bone = bands(pixels(rendered.body))
    assert air == 0 and bone == 255 and 0 < tissue < 255
    assert rendered.window is not None and rendered.window[1] >= BONE - AIR


def test_monochrome1_is_inverted() -> None:
    normal = bands(draw(encoded(ct_dataset()), window=(40, 400)))
    inverted = bands(draw(encoded(ct_dataset(PhotometricInterpretation="MONOCHROME1")), window=(40, 400)))
    assert inverted == tuple(255 - v for v in normal)
    assert inverted[0] == 255 and inverted[2] == 0  # air white, bone black, as the modality meant


def test_a_modality_lut_sequence_maps_stored_values_before_the_window() -> None:
    """Stored 0..4095 mapped by a LUT that puts everything below 1024 at 0 and above at 4000: what
    Orthanc's preview does not apply."""
    ds = ct_dataset()
    del ds.RescaleIntercept, ds.RescaleSlope
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]
    lut.ModalityLUTType = "US"
    lut.LUTData = np.array([0 if v < 1024 + WATER else 4000 for v in range(4096)], np.uint16).tobytes()
    ds.ModalityLUTSequence = [lut]
    air, tissue, bone = bands(draw(encoded(ds), window=(2000, 4000)))
    assert air == 0 and tissue >= 250 and bone >= 250  # soft tissue (1064 stored) was lifted by the LUT


# -- compressions --------------------------------------------------------------------------------------


def test_rle_and_jpeg2000_and_jpeg_lossless_draw_the_same_pixels_as_uncompressed(tmp_path: Path) -> None:
    reference = draw(encoded(ct_dataset()), window=(40, 400))
    rle = ct_dataset()
    rle.compress(RLELossless)
    j2k = ct_dataset()
    j2k.compress(JPEG2000Lossless)
    jpeg_lossless = gdcm_transcode(ct_dataset(), tmp_path, gdcm.TransferSyntax.JPEGLosslessProcess14_1)
    assert pydicom.dcmread(io.BytesIO(jpeg_lossless)).file_meta.TransferSyntaxUID == JPEGLosslessSV1
    for data in (encoded(rle), encoded(j2k), jpeg_lossless):
        assert np.array_equal(draw(data, window=(40, 400)), reference)


def test_jpeg_ls_draws_the_same_pixels_as_the_uncompressed_original() -> None:
    plain = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    jpeg_ls = Path(get_testdata_file("MR_small_jpeg_ls_lossless.dcm")).read_bytes()
    assert pydicom.dcmread(io.BytesIO(jpeg_ls)).file_meta.TransferSyntaxUID.name.startswith("JPEG-LS")
    assert np.array_equal(draw(jpeg_ls), draw(plain))


def test_jpeg_baseline_grey_and_colour() -> None:
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    for arr, photometric, samples in ((grey, "MONOCHROME2", 1), (quadrants(), "YBR_FULL_422", 3)):
        frame = io.BytesIO()
        Image.fromarray(arr).save(frame, "JPEG", quality=95)
        ds = rgb_dataset(quadrants()) if samples == 3 else ct_dataset()
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
        for name in ("RescaleIntercept", "RescaleSlope"):
            if name in ds:
                delattr(ds, name)
        ds.PixelData = encapsulate([frame.getvalue()])
        ds["PixelData"].VR = "OB"
        shown = draw(encoded(ds)).astype(int)
        if samples == 1:
            assert shown[10, 2] < 20 and shown[10, 61] > 235  # the ramp, dark to light
        else:
            assert_quadrants(shown, tolerance=40)


def assert_quadrants(shown: np.ndarray, tolerance: int = 2) -> None:
    for (r, c), colour in zip(
        ((16, 16), (16, 48), (48, 16), (48, 48)),
        ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)),
        strict=True,
    ):
        assert np.abs(shown[r, c, :3].astype(int) - colour).max() <= tolerance, (r, c, shown[r, c])


def test_colour_is_kept_rgb_j2k_rct_and_16_bit() -> None:
    assert_quadrants(draw(encoded(rgb_dataset(quadrants()))))
    j2k = rgb_dataset(quadrants())
    j2k.PhotometricInterpretation = "YBR_RCT"  # the reversible colour transform, in the codestream
    j2k.compress(JPEG2000Lossless, arr=quadrants())
    codestream = next(generate_frames(j2k.PixelData, number_of_frames=1))
    cod = codestream.index(b"\xff\x52")
    assert codestream[cod + 8] == 1  # the COD marker's multiple component transform flag
    assert_quadrants(draw(encoded(j2k)))
    assert_quadrants(draw(encoded(rgb_dataset(quadrants().astype(np.uint16) * 257, bits=16))))


def test_ybr_full_422_uncompressed_is_shown_in_its_colours() -> None:
    ybr = draw(Path(get_testdata_file("SC_ybr_full_422_uncompressed.dcm")).read_bytes())
    rgb = draw(Path(get_testdata_file("SC_rgb_dcmtk_+eb+cr.dcm")).read_bytes())
    assert ybr.shape == rgb.shape and ybr.ndim == 3
    assert np.abs(ybr.astype(int) - rgb.astype(int)).mean() < 8


def test_palette_colour_is_looked_up() -> None:
    shown = draw(Path(get_testdata_file("examples_palette.dcm")).read_bytes())
    assert shown.ndim == 3 and shown.shape[2] == 3
    assert (shown[..., 0] != shown[..., 1]).any()  # real colours, not grey


# -- frames, sizes, formats, files -----------------------------------------------------------------------


def test_each_frame_of_a_multi_frame_image() -> None:
    ds = ct_dataset()
    frames = np.stack([np.full((64, 64), 1024 + v, dtype=np.uint16) for v in (AIR, WATER, BONE)])
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    data = encoded(ds)
    seen = [int(draw(data, frame=n, window=(40, 400))[5, 5]) for n in (1, 2, 3)]
    assert seen[0] == 0 and 120 <= seen[1] <= 135 and seen[2] == 255
    assert render_bytes(data, RenderRequest(frame=2)).frames == 3
    beyond = render_bytes(data, RenderRequest(frame=4))
    assert beyond.problem is not None and "frames 1 to 3" in beyond.problem


def test_size_shrinks_keeping_the_aspect_and_jpeg_is_encoded() -> None:
    rendered = render_bytes(encoded(ct_dataset()), RenderRequest(size=32, media_type=JPEG, quality=80))
    assert rendered.media_type == JPEG and rendered.body[:2] == b"\xff\xd8"
    assert pixels(rendered.body).shape == (32, 32)
    big = render_bytes(encoded(ct_dataset()), RenderRequest(size=1024))
    assert big.media_type == PNG and pixels(big.body).shape == (64, 64)  # never enlarged
    wide = render_bytes(encoded(ct_dataset()), RenderRequest(viewport=(16, 40)))
    assert pixels(wide.body).shape == (16, 16)


def test_a_raw_dataset_without_file_meta_is_drawn() -> None:
    ds = ct_dataset()
    buf = pydicom.filebase.DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, True
    write_dataset(buf, ds)
    assert bands(draw(buf.getvalue(), window=(40, 400)))[2] == 255


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("truncated", "incomplete or damaged"),
        ("bad_j2k", "could not read"),
        ("no_pixels", "holds no image"),
        ("not_dicom", "not a DICOM file"),
    ],
)
def test_what_cannot_be_decoded_gives_a_placeholder_and_a_reason(damage: str, said: str) -> None:
    ds = ct_dataset()
    if damage == "truncated":
        ds.PixelData = ds.PixelData[:1000]
    elif damage == "bad_j2k":
        ds.compress(JPEG2000Lossless)
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 200])
    elif damage == "no_pixels":
        del ds.PixelData
    data = b"%PDF-1.4 not an image" * 50 if damage == "not_dicom" else encoded(ds)
    rendered = render_bytes(data, RenderRequest(size=128))
    assert rendered.problem is not None and said in rendered.problem, rendered.problem
    picture = pixels(rendered.body)
    assert picture.shape[:2] == (128, 128)
    assert picture.std() > 5  # a picture with words on it, not a blank square


def test_a_voi_lut_sequence_is_used_when_the_file_has_no_window() -> None:
    """A VOI LUT that lights only soft tissue: what the modality's own display would show."""
    ds = ct_dataset()
    del ds.RescaleIntercept, ds.RescaleSlope  # stored values: air 24, tissue 1064, bone 2524
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]
    lut.LUTData = np.array([65535 if 1000 <= v <= 2000 else 0 for v in range(4096)], np.uint16).tobytes()
    ds.VOILUTSequence = [lut]
    assert bands(draw(encoded(ds))) == (0, 255, 0)
    assert bands(draw(encoded(ds), window=(1064, 400)))[1] in range(120, 136)  # a window asked for wins
