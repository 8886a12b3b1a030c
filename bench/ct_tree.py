"""A synthetic but realistic CT archive on disk: the tree every benchmark reads.

`make_ct_tree` writes root/PATIENT_x/STUDY_y/SERIES_z/IMG_nnnn.dcm as a GE scanner would: Part 10 files in
Explicit VR Little Endian, CT Image Storage, a full standard CT header (patient, study, series, equipment,
frame of reference, image plane, CT image, VOI LUT, SOP common) and about a hundred GE private elements in
groups 0009 (GEMS_IDEN_01), 0019 (GEMS_ACQU_01), 0021 (GEMS_RELA_01), 0027 (GEMS_IMAG_01) and 0043
(GEMS_PARM_01), followed by 16-bit pixel data.

Writing is fast because pydicom encodes each series once: every element of a per-series template becomes
bytes, and each file only re-encodes the handful of elements that change per slice (SOP Instance UID,
Instance Number, position, times) before joining the pieces in tag order. A JSON marker, root/.complete,
records the parameters; a second call with the same parameters returns at once.

`header_layout` reports where a file's header ends (pixel data start) and where group 0020 ends, the
figures that decide how much of each file a header-only reader has to touch.
"""

from __future__ import annotations

import array
import json
import logging
import random
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, CTImageStorage, ExplicitVRLittleEndian

from bench.ct_series import CREATORS, PER_SLICE, CtSeries, private_plan, resolve, slice_z

log = logging.getLogger(__name__)

#: Bumped whenever the files written change, so a cached tree from an older generator is rewritten.
GENERATOR_VERSION = 1
MARKER = ".complete"

_UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's organisation root, reserved for generated UIDs
_PIXEL_TAG = 0x7FE00010
_PADDING = -2000  # GE's pixel padding value outside the reconstruction circle

# (study description, body part, protocol) per study; (series description, kernel, thickness) per series.
_STUDIES = (
    ("CT CHEST W/O CONTRAST", "CHEST", "5.1 ROUTINE CHEST"),
    ("CT ABDOMEN PELVIS W CONTRAST", "ABDOMEN", "6.2 ABD/PEL ROUTINE"),
    ("CT CHEST ABD PELVIS W", "CHEST_ABD_PELVIS", "6.4 CAP ONCOLOGY"),
    ("CT PE STUDY", "CHEST", "5.7 PE PROTOCOL"),
    ("CT RENAL STONE", "ABDOMEN", "6.9 KIDNEY STONE LOW DOSE"),
)
_SERIES_KINDS = (
    ("Axial 5mm STND", "STANDARD", 5.0),
    ("Axial 1.25mm BONE", "BONE", 1.25),
    ("Axial 2.5mm LUNG", "LUNG", 2.5),
    ("Axial 0.625mm SOFT", "SOFT", 0.625),
)
_FAMILY = (
    "MUELLER",
    "SCHMIDT",
    "NGUYEN",
    "GARCIA",
    "OKAFOR",
    "ROSSI",
    "KOWALSKI",
    "TANAKA",
    "DUBOIS",
    "SILVA",
)
_GIVEN = (
    "ANNA",
    "PETER",
    "MARIA",
    "JONAS",
    "LENA",
    "OMAR",
    "SOFIA",
    "LUKAS",
    "EMMA",
    "DAVID",
    "HANNA",
    "YUKI",
)
_PHYSICIANS = ("WEBER^THOMAS^^DR", "KLEIN^SABINE^^DR", "BAUER^MARTIN^^DR", "HOFFMANN^JULIA^^DR")


def _pixel_image(rows: int, columns: int, rng: random.Random) -> bytes:
    """A body-like phantom in stored values (HU + 1024): padding, air, soft tissue, a spine and two lungs."""
    image = array.array("h", [_PADDING]) * (rows * columns)
    cy, cx = rows / 2, columns / 2
    recon_r2 = (min(rows, columns) / 2 - 1) ** 2
    body_a, body_b = columns * 0.42, rows * 0.32
    tissue = [1024 + 40 + rng.randrange(-12, 13) for _ in range(64)]
    for y in range(rows):
        dy = y - cy + 0.5
        row = y * columns
        # Air inside the reconstruction circle; padding outside it.
        half_recon = (recon_r2 - dy * dy) ** 0.5 if recon_r2 > dy * dy else 0.0
        lo, hi = int(cx - half_recon), int(cx + half_recon)
        image[row + lo : row + hi] = array.array("h", [24]) * (hi - lo)
        t = 1 - (dy / body_b) ** 2
        if t <= 0:
            continue
        half = body_a * t**0.5
        lo, hi = int(cx - half), int(cx + half)
        image[row + lo : row + hi] = array.array("h", (tissue[(x + y) % 64] for x in range(lo, hi)))
        for lung_cx in (cx - columns * 0.18, cx + columns * 0.18):
            lt = 1 - (dy / (rows * 0.2)) ** 2
            if lt > 0 and dy < rows * 0.12:
                lh = columns * 0.12 * lt**0.5
                a, b = int(lung_cx - lh), int(lung_cx + lh)
                image[row + a : row + b] = array.array("h", [1024 - 850]) * (b - a)
        if rows * 0.14 < dy < rows * 0.26:  # vertebral body
            a, b = int(cx - columns * 0.05), int(cx + columns * 0.05)
            image[row + a : row + b] = array.array("h", [1024 + 700]) * (b - a)
    if sys.byteorder != "little":
        image.byteswap()
    return image.tobytes()


def _later(hhmmss: str, minutes: int) -> str:
    total = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:6]) + minutes * 60
    total %= 24 * 3600
    return f"{total // 3600:02d}{total // 60 % 60:02d}{total % 60:02d}"


def _encode(elem: DataElement) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, ["iso8859"])
    return fp.getvalue()


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _template(s: CtSeries, private_tags: int) -> tuple[Dataset, dict[int, Callable]]:
    """The series' dataset (slice 0) and, per tag, how to build that element for slice k."""
    patient_rng = random.Random(s.patient * 7919 + 17)
    study_desc, body_part, protocol = _STUDIES[s.study % len(_STUDIES)]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = s.study_date
    ds.InstanceCreationTime = s.study_time
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"{s.series_uid}.1"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = s.study_date
    ds.StudyTime = s.study_time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = _later(s.study_time, minutes=3 * s.number)
    ds.AccessionNumber = f"A{20_000_000 + s.study * 13:08d}"
    ds.Modality = "CT"
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.InstitutionName = "RADIOLOGIE AM MARKT"
    ds.InstitutionAddress = "Marktplatz 4, 79098 Freiburg"
    ds.ReferringPhysicianName = _PHYSICIANS[s.study % len(_PHYSICIANS)]
    ds.StationName = "CT01_OC0"
    ds.ProcedureCodeSequence = [_code_item(f"CT{s.study % len(_STUDIES) + 100}", "GEHC", study_desc)]
    ds.StudyDescription = study_desc
    ds.SeriesDescription = s.description
    ds.InstitutionalDepartmentName = "CT"
    ds.OperatorsName = "MTRA^CT"
    ds.ManufacturerModelName = "LightSpeed VCT"
    scout = Dataset()
    scout.ReferencedSOPClassUID = CTImageStorage
    scout.ReferencedSOPInstanceUID = f"{s.study_uid}.99.1"
    ds.ReferencedImageSequence = [scout]
    family, given = patient_rng.choice(_FAMILY), patient_rng.choice(_GIVEN)
    ds.PatientName = f"{family}^{given}"
    ds.PatientID = f"P{100_000 + s.patient * 37:07d}"
    birth = date(1940, 1, 1) + timedelta(days=patient_rng.randrange(0, 365 * 60))
    ds.PatientBirthDate = birth.strftime("%Y%m%d")
    ds.PatientSex = patient_rng.choice("FM")
    ds.PatientAge = f"{max(1, int(s.study_date[:4]) - birth.year):03d}Y"
    ds.PatientWeight = str(patient_rng.randrange(48, 120))
    ds.AdditionalPatientHistory = "TUMOR STAGING"
    if s.number > 1:
        ds.ContrastBolusAgent = "IOMEPROL 350"
    ds.BodyPartExamined = body_part
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = f"{s.thickness}"
    ds.KVP = "120"
    ds.SpacingBetweenSlices = f"{s.thickness}"
    ds.DataCollectionDiameter = "500.000000"
    ds.SoftwareVersions = "gmp_vct.42"
    ds.ProtocolName = protocol
    ds.ReconstructionDiameter = f"{s.pixel_spacing * s.columns:.6f}"
    ds.DistanceSourceToDetector = "946.745"
    ds.DistanceSourceToPatient = "541.000"
    ds.GantryDetectorTilt = "0.000000"
    ds.TableHeight = "147.500000"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = str(180 + 20 * (s.series % 7))
    ds.Exposure = "11"
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = "48000"
    ds.FocalSpots = "0.700000"
    ds.ConvolutionKernel = s.kernel
    ds.PatientPosition = "FFS"
    ds.RevolutionTime = 0.5
    ds.SingleCollimationWidth = 0.625
    ds.TotalCollimationWidth = 40.0
    ds.TableSpeed = 78.75
    ds.TableFeedPerRotation = 39.375
    ds.SpiralPitchFactor = 0.984375
    ds.CTDIvol = 9.87
    ds.StudyInstanceUID = s.study_uid
    ds.SeriesInstanceUID = s.series_uid
    ds.StudyID = f"{4711 + s.study}"
    ds.SeriesNumber = s.number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [
        f"{-s.pixel_spacing * s.columns / 2:.3f}",
        f"{-s.pixel_spacing * s.rows / 2:.3f}",
        f"{s.z_start:.3f}",
    ]
    ds.ImageOrientationPatient = ["1.000000", "0.000000", "0.000000", "0.000000", "1.000000", "0.000000"]
    ds.FrameOfReferenceUID = s.frame_uid
    ds.PositionReferenceIndicator = "SN"
    ds.SliceLocation = f"{s.z_start:.3f}"
    ds.ImagesInAcquisition = s.files
    ds.ImageComments = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = s.rows
    ds.Columns = s.columns
    ds.PixelSpacing = [f"{s.pixel_spacing:.6f}", f"{s.pixel_spacing:.6f}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.add_new(0x00280120, "SS", _PADDING)  # PixelPaddingValue: SS because PixelRepresentation is 1
    ds.WindowCenter = "40" if s.kernel != "LUNG" else "-600"
    ds.WindowWidth = "400" if s.kernel != "LUNG" else "1600"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"

    per_slice: dict[int, Callable] = {
        0x00080018: lambda k: DataElement(0x00080018, "UI", f"{s.series_uid}.{k + 1}"),
        0x00080033: lambda k: DataElement(0x00080033, "TM", f"{ds.ContentTime}.{k * 127 % 1_000_000:06d}"),
        0x00200013: lambda k: DataElement(0x00200013, "IS", k + 1),
        0x00200032: lambda k: DataElement(
            0x00200032, "DS", [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1], f"{slice_z(s, k):.3f}"]
        ),
        0x00201041: lambda k: DataElement(0x00201041, "DS", f"{slice_z(s, k):.3f}"),
    }
    blocks = {group: ds.private_block(group, creator, create=True) for group, creator in CREATORS.items()}
    for group, offset, vr, value in private_plan(private_tags):
        blocks[group].add_new(offset, vr, resolve(value, s, 0))
        if (group, offset) in PER_SLICE:
            tag = blocks[group].get_tag(offset)
            per_slice[tag] = lambda k, tag=tag, vr=vr, value=value: DataElement(tag, vr, resolve(value, s, k))
    # Creators of groups that got no elements would be noise: drop them.
    for group, block in blocks.items():
        if not any(Tag(t).group == group and Tag(t).element > 0xFF for t in ds.keys()):
            del ds[Tag(group, block.block_start >> 8)]
    return ds, per_slice


def _file_meta(sop_uid: str) -> bytes:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]
    meta.SourceApplicationEntityTitle = "CT01_OC0"
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    return fp.getvalue()


def _plan_series(files: int, series: int, rows: int, columns: int, seed: int) -> Iterator[CtSeries]:
    rng = random.Random(seed)
    org = f"{_UID_ROOT}{seed + 1}.{rng.randrange(10**8, 10**9)}"
    per, extra = divmod(files, series)
    studies_per_patient, series_per_study = 2, 2
    for i in range(series):
        study = i // series_per_study
        patient = study // studies_per_patient
        number = i % series_per_study + 1
        n = per + (1 if i < extra else 0)
        description, kernel, thickness = _SERIES_KINDS[(study + number - 1) % len(_SERIES_KINDS)]
        day = date(2019, 1, 2) + timedelta(days=rng.randrange(0, 5 * 365))
        stamp = rng.randrange(10**9, 10**10)
        yield CtSeries(
            patient=patient,
            study=study,
            series=i,
            number=number,
            files=n,
            rows=rows,
            columns=columns,
            thickness=thickness,
            kernel=kernel,
            description=description,
            study_uid=f"{org}.1.{study + 1}.{stamp}",
            series_uid=f"{org}.2.{i + 1}.{stamp + 1}",
            frame_uid=f"{org}.3.{study + 1}.{stamp}",
            study_date=day.strftime("%Y%m%d"),
            study_time=f"{rng.randrange(7, 18):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
            z_start=round(rng.uniform(-40.0, 60.0), 1),
            pixel_spacing=round(360.0 / columns, 6),
        )


def _write_series(root: Path, s: CtSeries, rng: random.Random, private_tags: int) -> int:
    ds, per_slice = _template(s, private_tags)
    static = {int(elem.tag): _encode(elem) for elem in ds}
    order = sorted(set(static) | set(per_slice))
    image = _pixel_image(s.rows, s.columns, rng)
    pixel_header = _encode_pixel_header(len(image))
    row_bytes = 2 * s.columns
    folder = root / f"PATIENT_{s.patient + 1:04d}" / f"STUDY_{s.study % 2 + 1:02d}" / f"SERIES_{s.number:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(s.files)))
    written = 0
    for k in range(s.files):
        varying = {tag: _encode(make(k)) for tag, make in per_slice.items()}
        sop_uid = f"{s.series_uid}.{k + 1}"
        # Shift the image a few rows per slice so neighbouring slices differ, without recomputing it.
        shift = (k % 9) * row_bytes
        parts = [_file_meta(sop_uid)]
        parts.extend(varying.get(tag) or static[tag] for tag in order)
        parts += [pixel_header, image[shift:], image[:shift]]
        (folder / f"IMG_{k + 1:0{width}d}.dcm").write_bytes(b"".join(parts))
        written += 1
    return written


def _encode_pixel_header(length: int) -> bytes:
    # (7FE0,0010) OW: tag, VR, two reserved bytes, 32-bit length; the value follows.
    return (
        (0x7FE0).to_bytes(2, "little")
        + (0x0010).to_bytes(2, "little")
        + b"OW\x00\x00"
        + length.to_bytes(4, "little")
    )


def make_ct_tree(
    root: Path,
    files: int = 4000,
    series: int = 40,
    private_tags: int = 100,
    rows: int = 256,
    columns: int = 256,
    seed: int = 0,
) -> Path:
    """Write (or reuse) a CT archive of `files` slices in `series` series under `root`; return `root`."""
    if files < 1 or series < 1 or files < series:
        raise ValueError(f"need files >= series >= 1, got files={files} series={series}")
    root = Path(root)
    params = {
        "generator": GENERATOR_VERSION,
        "files": files,
        "series": series,
        "private_tags": private_tags,
        "rows": rows,
        "columns": columns,
        "seed": seed,
        "pydicom": pydicom.__version__,
    }
    marker = root / MARKER
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("params") == params:
            return root
    except (OSError, ValueError, AttributeError):
        pass
    root.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    # Only what this generator writes is removed: PATIENT_* folders from an earlier, different tree.
    for old in root.iterdir():
        if old.is_dir() and re.fullmatch(r"PATIENT_\d+", old.name):
            shutil.rmtree(old)
    rng = random.Random(seed ^ 0x5EED)
    written = 0
    for s in _plan_series(files, series, rows, columns, seed):
        written += _write_series(root, s, rng, private_tags)
    marker.write_text(
        json.dumps({"params": params, "files_written": written}, indent=2) + "\n", encoding="utf-8"
    )
    log.info("wrote %d files in %d series under %s", written, series, root)
    return root


def iter_files(root: Path) -> Iterator[Path]:
    """The tree's DICOM files in a stable order (patient, study, series, slice)."""
    yield from sorted(Path(root).glob("PATIENT_*/STUDY_*/SERIES_*/IMG_*.dcm"))


@dataclass(frozen=True)
class HeaderLayout:
    """Byte offsets in one file: where group 0020 ends and where the pixel data element starts."""

    size: int
    group_0020_end: int
    pixel_data_start: int


def header_layout(path: Path) -> HeaderLayout:
    """Offsets from pydicom's raw elements (value offset + length); the pixel data value is not loaded."""
    ds = pydicom.dcmread(path, defer_size=1024)
    group_end = 0
    for tag in ds.keys():
        raw = ds.get_item(tag)
        if Tag(tag).group == 0x0020 and isinstance(raw, RawDataElement):
            group_end = max(group_end, raw.value_tell + raw.length)
    pixel = ds.get_item(_PIXEL_TAG)
    # A raw element knows its value offset as value_tell; a deferred (large) one as file_tell.
    value_at = pixel.value_tell if isinstance(pixel, RawDataElement) else pixel.file_tell
    if value_at is None:
        raise ValueError(f"{path}: no pixel data offset")
    explicit_long_header = 12  # tag (4) + VR (2) + reserved (2) + length (4)
    return HeaderLayout(
        size=Path(path).stat().st_size,
        group_0020_end=group_end,
        pixel_data_start=value_at - explicit_long_header,
    )


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--series", type=int, default=40)
    parser.add_argument("--private-tags", type=int, default=100)
    args = parser.parse_args()
    t0 = time.perf_counter()
    make_ct_tree(args.root, files=args.files, series=args.series, private_tags=args.private_tags)
    print(f"{args.root}: ready in {time.perf_counter() - t0:.1f} s")
