"""A synthetic DICOM archive shaped like a radiology practice's NAS: for the demo, the tests, the benchmarks.

`write_sample` writes exactly `files` DICOM files for `patients` patients into a dated folder tree:

    <root>/<YYYY>/<MM>/<PatientID>_<FAMILY>/<StudyDate>_<Accession>/<SeriesNo>_<Modality>_<desc>/IMG00001.dcm

About 1 series in 10 names its files without an extension (`IM00001`), about 1 in 10 is Implicit VR and 1 in
30 is "raw" (implicit, no preamble, no file meta, as in old archives); study folders now and then hold
`Thumbs.db`, `desktop.ini` or `notes.txt`. Patients 0..4 are always the same five, so tests can rely on them:
MÜLLER^HANS (ISO_IR 100), Иванов^Иван (ISO_IR 144), Παπαδόπουλος^Νίκος (ISO_IR 126), VAN DER MERWE^PIETER
(ISO_IR 192) and DLAMINI^THANDO (no SpecificCharacterSet). The same arguments write the same bytes.

Speed: pydicom's `dcmwrite` manages ~300 files/s here, too slow for 100,000-file benchmarks. So each series'
common elements are encoded once, and per file only SOPInstanceUID, InstanceNumber, position, pixel data and
the file meta are encoded and joined in. Text in a non-ASCII character set is encoded by pydicom; the rest is
plain little-endian encoding, byte for byte what pydicom writes (the tests re-encode every file with pydicom
and compare).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from pacsindex.sample.dicombytes import (
    SCANNERS,
    U32,
    Element,
    PrivateBlock,
    encode_element,
    encode_runs,
    pixel_pattern,
    private_plan,
    private_value,
    standard_tag,
)

ORG_ROOT = "1.2.826.0.1.3680043.10.1234."
_SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
}
_MODALITY_WEIGHTS = {"CT": 0.3, "MR": 0.2, "CR": 0.35, "US": 0.15}
_MAX_PRIVATE = 512

# (PatientName, SpecificCharacterSet, PatientID, sex, birth date, modality of the first study)
_FIXED_PATIENTS = (
    ("MÜLLER^HANS", "ISO_IR 100", "PID-MUELLER", "M", date(1962, 3, 14), "MR"),
    ("Иванов^Иван", "ISO_IR 144", "PID-IVANOV", "M", date(1975, 8, 22), "CT"),
    ("Παπαδόπουλος^Νίκος", "ISO_IR 126", "PID-PAPA", "M", date(1958, 1, 5), "CR"),
    ("VAN DER MERWE^PIETER", "ISO_IR 192", "8001015009087", "M", date(1980, 1, 1), "US"),
    ("DLAMINI^THANDO", None, "PID-DLAMINI", "F", date(1991, 6, 11), "CR"),
)
# South African names by language group: (family names, male given names, female given names)
_SA_NAMES = (
    (
        ("SMITH", "WILLIAMS", "TAYLOR", "JACOBS", "ADAMS", "FORTUIN"),
        ("JOHN", "MICHAEL", "DAVID", "GRANT"),
        ("SARAH", "EMMA", "CLAIRE", "NICOLE"),
    ),
    (
        ("VAN DER MERWE", "BOTHA", "PRETORIUS", "DU PLESSIS", "VAN WYK", "STEYN", "JOUBERT", "COETZEE"),
        ("PIETER", "JOHAN", "WILLEM", "FRANCOIS", "HENDRIK"),
        ("ANNA", "MARIKA", "ELSABE", "KARIN", "SUNETTE"),
    ),
    (
        ("DLAMINI", "NKOSI", "NDLOVU", "ZULU", "MKHIZE", "NGCOBO", "BUTHELEZI", "SITHOLE"),
        ("SIPHO", "BONGANI", "SIBUSISO", "MANDLA", "THANDO"),
        ("NOMVULA", "ZANELE", "LINDIWE", "THANDEKA"),
    ),
    (
        ("MADIKIZELA", "MBEKI", "SISULU", "MAJOLA", "NTSHONA", "QWABE"),
        ("XOLANI", "SIYABONGA", "LUTHANDO"),
        ("AYANDA", "NOLUTHANDO", "LUNGILE", "THEMBEKILE"),
    ),
    (
        ("NAIDOO", "PILLAY", "GOVENDER", "MOODLEY", "REDDY", "SINGH", "CHETTY", "PADAYACHEE"),
        ("RAJESH", "VISHNU", "PRAVEEN", "KUBEN"),
        ("PRIYA", "KAVITHA", "ANUSHA", "NISHA"),
    ),
    (
        ("MOKOENA", "MOLOI", "MOTAUNG", "MOLEFE", "KHUMALO"),
        ("TSHEPO", "KAGISO", "THABO"),
        ("LERATO", "PALESA", "DIMAKATSO"),
    ),
)
# Names that need a character set beyond ASCII: (family, given, sex, SpecificCharacterSet)
_FOREIGN_NAMES = (
    ("Gonçalves", "José", "M", "ISO_IR 100"),
    ("SCHÄFER", "JÜRGEN", "M", "ISO_IR 100"),
    ("FERREIRA", "João", "M", "ISO_IR 100"),
    ("Pérez", "María", "F", "ISO_IR 100"),
    ("Петров", "Алексей", "M", "ISO_IR 144"),
    ("Смирнова", "Ольга", "F", "ISO_IR 144"),
    ("Γεωργίου", "Μαρία", "F", "ISO_IR 126"),
    ("Κωνσταντίνου", "Γιώργος", "M", "ISO_IR 126"),
    ("Öztürk", "Ayşe", "F", "ISO_IR 192"),
    ("Nguyễn", "Thị Lan", "F", "ISO_IR 192"),
)
# (InstitutionName, code used in station names and accession numbers)
_INSTITUTIONS = (
    ("Netcare Milpark Hospital", "MLP"),
    ("Life Fourways Hospital", "FWY"),
    ("Mediclinic Sandton", "MCS"),
    ("Chris Hani Baragwanath Academic Hospital", "CHB"),
    ("Groote Schuur Hospital", "GSH"),
    ("Netcare Christiaan Barnard Memorial Hospital", "CBM"),
    ("Life Entabeni Hospital", "ENT"),
    ("Inkosi Albert Luthuli Central Hospital", "IAL"),
    ("Mediclinic Panorama", "PAN"),
    ("Steve Biko Academic Hospital", "SBA"),
)
_REFERRERS = ("NAIDOO", "VAN WYK", "MOKOENA", "PATEL", "SMITH", "DU TOIT", "KHUMALO", "GOVENDER", "MAHLANGU")
_MEDICAL_AIDS = ("DISC", "BONI", "MOMED", "GEMS", "BEST", "FEDH")
# (modality, StudyDescription, BodyPartExamined, series descriptions in acquisition order)
_PROTOCOLS = (
    ("CT", "CT CHEST W CONTRAST", "CHEST", ("SCOUT", "AXIAL 5MM", "AXIAL 1MM LUNG", "CORONAL 3MM")),
    ("CT", "CT BRAIN WO CONTRAST", "HEAD", ("SCOUT", "AXIAL 5MM BRAIN", "AXIAL 2MM BONE", "SAGITTAL 3MM")),
    ("CT", "CT ABDOMEN PELVIS W CONTRAST", "ABDOMEN", ("SCOUT", "VENOUS 5MM", "DELAYED 5MM", "CORONAL 3MM")),
    ("CT", "CT PULMONARY ANGIOGRAM", "CHEST", ("SCOUT", "CTPA 1MM", "MIP AXIAL 10MM", "CORONAL MIP")),
    ("CT", "CT CERVICAL SPINE", "CSPINE", ("SCOUT", "AXIAL 2MM BONE", "SAGITTAL 2MM", "CORONAL 2MM")),
    ("MR", "MR BRAIN", "BRAIN", ("T1 SAG", "T2 AX", "FLAIR AX", "DWI AX")),
    ("MR", "MR LUMBAR SPINE", "LSPINE", ("T2 SAG", "T1 SAG", "T2 AX", "STIR SAG")),
    ("MR", "MR KNEE RIGHT", "KNEE", ("PD FS COR", "PD FS SAG", "T1 COR", "PD FS AX")),
    ("MR", "MR PROSTATE", "PROSTATE", ("T2 AX", "DWI AX", "ADC", "DCE")),
    ("CR", "CHEST PA", "CHEST", ("PA", "LATERAL")),
    ("CR", "KNEE LEFT", "KNEE", ("AP", "LATERAL")),
    ("CR", "PELVIS AP", "PELVIS", ("AP",)),
    ("CR", "HAND RIGHT", "HAND", ("PA", "OBLIQUE", "LATERAL")),
    ("CR", "LUMBAR SPINE", "LSPINE", ("AP", "LATERAL")),
    ("US", "ABDOMEN US", "ABDOMEN", ("LIVER", "GALLBLADDER", "KIDNEYS", "SPLEEN")),
    ("US", "OBSTETRIC US", "ABDOMEN", ("FETAL BIOMETRY", "PLACENTA")),
    ("US", "THYROID US", "NECK", ("RIGHT LOBE", "LEFT LOBE", "ISTHMUS")),
    ("US", "PELVIS US", "PELVIS", ("UTERUS", "OVARIES", "BLADDER")),
)
_DESKTOP_INI = (
    b"[.ShellClassInfo]\r\nIconResource=C:\\Windows\\System32\\imageres.dll,-3\r\n"
    b"[ViewState]\r\nMode=\r\nVid=\r\nFolderType=Pictures\r\n"
)


@dataclass(frozen=True)
class SampleSummary:
    """What `write_sample` wrote."""

    root: str
    patients: int
    studies: int
    series: int
    files: int  # DICOM files written (including the no-extension and raw ones)
    other_files: int  # non-DICOM files written (Thumbs.db, desktop.ini, notes)


@dataclass(slots=True)
class _Patient:
    name: str
    charset: str | None
    patient_id: str
    sex: str
    birth: date
    other_ids: list[str]
    folder: str


@dataclass(slots=True)
class _Study:
    patient: _Patient
    protocol: tuple[str, str, str, tuple[str, ...]]
    charset: str | None
    when: date
    time: str
    institution: tuple[str, str]
    accession: str
    referrer: str
    uid: str
    series: list[_Series] = field(default_factory=list)


@dataclass(slots=True)
class _Series:
    study: _Study
    number: int
    description: str
    scanner: tuple[str, str, str, str, tuple[tuple[int, str], ...]]
    syntax: str  # "explicit", "implicit" or "raw" (implicit, no preamble, no file meta)
    no_extension: bool
    weight: float
    rank: tuple[int, int, int]  # which series go first when there are fewer files than series
    count: int = 0


def write_sample(
    root: str | os.PathLike[str],
    *,
    patients: int = 20,
    files: int = 400,
    seed: int = 0,
    rows: int = 32,
    columns: int = 32,
    private_tags: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> SampleSummary:
    """Write a synthetic archive of exactly `files` DICOM files under `root` (created if missing)."""
    if files < 0 or patients < 0 or (files and not patients):
        raise ValueError("need files >= 0 and, when files > 0, patients >= 1")
    if not (1 <= rows <= 0xFFFF and 1 <= columns <= 0xFFFF):
        raise ValueError("rows and columns must be between 1 and 65535")
    if not 0 <= private_tags <= _MAX_PRIVATE:
        raise ValueError(f"private_tags must be between 0 and {_MAX_PRIVATE}")
    rng = random.Random(seed)
    run_key = f"{seed}|{patients}|{files}|{rows}|{columns}|{private_tags}"
    series = _plan(rng, patients, run_key)
    if files < len(series):
        keep = {id(s) for s in sorted(series, key=lambda s: s.rank)[:files]}
        series = [s for s in series if id(s) in keep]
    _allocate(rng, series, files)
    studies: list[_Study] = []
    for se in series:
        if not studies or studies[-1] is not se.study:
            studies.append(se.study)
            se.study.series = []
        se.study.series.append(se)

    top = os.path.abspath(os.fspath(root))
    os.makedirs(top, exist_ok=True)
    plans: dict[tuple[tuple[int, str], ...], list[PrivateBlock]] = {}
    pixels: dict[tuple[int, int, int], bytes] = {}
    done = others = 0
    for st in studies:
        study_dir = os.path.join(
            top, f"{st.when:%Y}", f"{st.when:%m}", st.patient.folder, f"{st.when:%Y%m%d}_{st.accession}"
        )
        for se in st.series:
            modality = st.protocol[0]
            series_dir = os.path.join(study_dir, f"{se.number}_{modality}_{_folder_name(se.description)}")
            os.makedirs(series_dir, exist_ok=True)
            pairs = se.scanner[4]
            if pairs not in plans:
                plans[pairs] = private_plan(pairs, private_tags)
            elements = _series_elements(rng, se, rows, columns, plans[pairs], run_key)
            key = (_bits(modality), rows, columns)
            if key not in pixels:
                pixels[key] = pixel_pattern(*key)
            done = _write_series(se, elements, series_dir, pixels[key], key[1:], done, files, progress)
        others += _write_other_files(rng, study_dir, st)
    if progress is not None:
        progress(done, files)
    return SampleSummary(
        root=top,
        patients=len({id(st.patient) for st in studies}),
        studies=len(studies),
        series=len(series),
        files=done,
        other_files=others,
    )


def _plan(rng: random.Random, patients: int, run_key: str) -> list[_Series]:
    """Patients → studies → series, in archive order, without file counts yet."""
    first_day = date(2016, 1, 1).toordinal()
    scanners: dict[tuple[str, str], tuple[str, str, str, str, tuple[tuple[int, str], ...]]] = {}
    series: list[_Series] = []
    for p in range(patients):
        if p < len(_FIXED_PATIENTS):
            name, charset, pid, sex, birth, first_modality = _FIXED_PATIENTS[p]
            fixed_charset = True
        else:
            pid, birth = f"PID-{p:06d}", date.fromordinal(date(1935, 1, 1).toordinal() + rng.randrange(29000))
            first_modality, fixed_charset = "", rng.random() < 0.1
            if fixed_charset:
                family, given, sex, charset = rng.choice(_FOREIGN_NAMES)
            else:
                families, males, females = rng.choice(_SA_NAMES)
                sex = rng.choice("MF")
                family, given = rng.choice(families), rng.choice(males if sex == "M" else females)
                charset = None
            name = f"{family}^{given}"
        other_ids = []
        if rng.random() < 0.35:  # a medical-aid membership number
            other_ids.append(f"{rng.choice(_MEDICAL_AIDS)}-{rng.randrange(10**7, 10**9)}")
        if not fixed_charset and rng.random() < 0.25:
            other_ids.append(_sa_id_number(rng, birth, sex))
        folder = f"{pid}_{_folder_name(name.split('^')[0])}"
        patient = _Patient(name, charset, pid, sex, birth, other_ids, folder)
        home = rng.choice(_INSTITUTIONS)
        days = sorted(rng.sample(range(3650), rng.choice((1, 1, 2, 3))))
        for k, day in enumerate(days):
            modality = (
                first_modality
                if k == 0 and first_modality
                else rng.choices(list(_MODALITY_WEIGHTS), weights=list(_MODALITY_WEIGHTS.values()))[0]
            )
            protocol = rng.choice([pr for pr in _PROTOCOLS if pr[0] == modality])
            institution = home if rng.random() < 0.8 else rng.choice(_INSTITUTIONS)
            when = date.fromordinal(first_day + day)
            referrer = (
                f"DR^{rng.choice(_REFERRERS)}"
                if rng.random() < 0.7
                else f"{rng.choice(_REFERRERS)}^{rng.choice('ABCDEGJKMPST')}^^DR"
            )
            study_charset = charset if fixed_charset else rng.choice((None, None, "ISO_IR 100", "ISO_IR 192"))
            time = f"{rng.randint(7, 18):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
            accession = f"{institution[1]}{when:%y}{rng.randrange(10**6):06d}"
            study = _Study(
                patient,
                protocol,
                study_charset,
                when,
                time,
                institution,
                accession,
                referrer,
                generate_uid(ORG_ROOT, [run_key, "study", str(p), str(k)]),
            )
            for n, description in enumerate(protocol[3][: rng.randint(1, min(4, len(protocol[3])))]):
                if (institution[1], modality) not in scanners:  # one scanner per modality and hospital
                    scanners[institution[1], modality] = rng.choice([s for s in SCANNERS if s[0] == modality])
                r = rng.random()
                syntax = "raw" if r < 0.03 else "implicit" if r < 0.13 else "explicit"
                weight = (
                    (0.03 if description == "SCOUT" else 3.0 if "1MM" in description else 1.0)
                    * rng.uniform(0.6, 1.5)
                    * (1.0 if modality == "CT" else 0.5)
                )
                series.append(
                    _Series(
                        study,
                        n + 1,
                        description,
                        scanners[institution[1], modality],
                        syntax,
                        rng.random() < 0.1,
                        weight,
                        (n, k, p),
                    )
                )
    return series


def _allocate(rng: random.Random, series: list[_Series], files: int) -> None:
    """Give every series ≥ 1 file, CR/US 1–3, CT/MR the rest by weight, so the total is exactly `files`."""
    for se in series:
        se.count = 1
    rest = files - len(series)
    big = [se for se in series if se.study.protocol[0] in ("CT", "MR")]
    small = [se for se in series if se.study.protocol[0] not in ("CT", "MR")]
    if big:
        for se in small:
            extra = min(rest, rng.choice((0, 0, 1, 2)))
            se.count += extra
            rest -= extra
    targets = big or small
    if not targets or rest <= 0:
        return
    total = sum(se.weight for se in targets) if big else float(len(targets))
    shares = [rest * (se.weight if big else 1.0) / total for se in targets]
    floors = [int(s) for s in shares]
    order = sorted(range(len(targets)), key=lambda j: floors[j] - shares[j])
    for j in order[: rest - sum(floors)]:
        floors[j] += 1
    for se, extra in zip(targets, floors, strict=True):
        se.count += extra


def _series_elements(
    rng: random.Random, se: _Series, rows: int, columns: int, private: list[PrivateBlock], run_key: str
) -> list[Element]:
    """The elements every file of the series shares, as (tag, VR, value); VRs from pydicom's dictionary."""
    st, pa = se.study, se.study.patient
    modality, study_description, body_part, _ = st.protocol
    _, manufacturer, model, software, _ = se.scanner
    day, bits, sectional = f"{st.when:%Y%m%d}", _bits(modality), modality in ("CT", "MR")
    hour, minute = min(int(st.time[:2]) + se.number // 3, 23), (int(st.time[2:4]) + 7 * se.number) % 60
    image_type = ["ORIGINAL", "PRIMARY"]
    if sectional:
        image_type.append("LOCALIZER" if se.description == "SCOUT" else "AXIAL")
    chest, series_time = body_part == "CHEST", f"{hour:02d}{minute:02d}00"
    values: list[tuple[str, object]] = [
        ("SpecificCharacterSet", st.charset),
        ("ImageType", image_type),
        ("InstanceCreationDate", day),
        ("SOPClassUID", _SOP_CLASSES[modality]),
        ("StudyDate", day),
        ("SeriesDate", day),
        ("ContentDate", day),
        ("StudyTime", st.time),
        ("SeriesTime", series_time),
        ("ContentTime", series_time),
        ("AccessionNumber", st.accession),
        ("Modality", modality),
        ("Manufacturer", manufacturer),
        ("InstitutionName", st.institution[0]),
        ("ReferringPhysicianName", st.referrer),
        ("StationName", f"{st.institution[1]}{modality}01"),
        ("StudyDescription", study_description),
        ("SeriesDescription", se.description),
        ("ManufacturerModelName", model),
        ("PatientName", pa.name),
        ("PatientID", pa.patient_id),
        ("PatientBirthDate", f"{pa.birth:%Y%m%d}"),
        ("PatientSex", pa.sex),
        ("OtherPatientIDs", pa.other_ids),
        ("PatientAge", f"{max(0, (st.when - pa.birth).days // 365):03d}Y"),
        ("BodyPartExamined", body_part),
        ("SliceThickness", _thickness(se.description) if sectional else None),
        ("KVP", {"CT": "120", "CR": str(rng.choice((60, 70, 81, 90)))}.get(modality)),
        ("SoftwareVersions", software),
        (
            "MagneticFieldStrength",
            ("3" if model in ("MAGNETOM Skyra", "Ingenia") else "1.5") if modality == "MR" else None,
        ),
        ("PatientPosition", "HFS" if sectional else None),
        (
            "ViewPosition",
            {"LATERAL": "LL", "OBLIQUE": ""}.get(se.description, se.description)
            if modality == "CR"
            else None,
        ),
        ("StudyInstanceUID", st.uid),
        ("SeriesInstanceUID", generate_uid(ORG_ROOT, [st.uid, "series", str(se.number)])),
        ("StudyID", st.accession[-6:].lstrip("0") or "1"),
        ("SeriesNumber", se.number),
        ("AcquisitionNumber", 1),
        ("ImageOrientationPatient", ["1", "0", "0", "0", "1", "0"] if sectional else None),
        ("FrameOfReferenceUID", generate_uid(ORG_ROOT, [st.uid, "for", run_key]) if sectional else None),
        ("SamplesPerPixel", 1),
        ("PhotometricInterpretation", "MONOCHROME2"),
        ("Rows", rows),
        ("Columns", columns),
        ("PixelSpacing", None if modality == "US" else ["0.7", "0.7"] if sectional else ["0.15", "0.15"]),
        ("BitsAllocated", bits),
        ("BitsStored", min(bits, 12)),
        ("HighBit", min(bits, 12) - 1),
        ("PixelRepresentation", 0),
        ("WindowCenter", ("-600" if chest else "40") if modality == "CT" else "1000" if bits == 16 else None),
        ("WindowWidth", ("1500" if chest else "400") if modality == "CT" else "2000" if bits == 16 else None),
        ("RescaleIntercept", "-1024" if modality == "CT" else None),
        ("RescaleSlope", "1" if modality == "CT" else None),
    ]
    # None, [] and "" mean "not in this series"; 0 is a value (PixelRepresentation)
    elements = [(*standard_tag(key), value) for key, value in values if value not in (None, [], "")]
    for block, (group, creator, items) in enumerate(private):
        # each (group, creator) takes the next free block of its group, as pydicom's private_block does
        slot = 0x10 + sum(1 for g, _c, _i in private[:block] if g == group)
        elements.append(((group << 16) | slot, "LO", creator))
        elements.extend(
            ((group << 16) | (slot << 8) | offset, vr, private_value(rng, vr)) for offset, vr in items
        )
    return elements


def _write_series(
    se: _Series,
    elements: list[Element],
    series_dir: str,
    pattern: bytes,
    size: tuple[int, int],
    done: int,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Write the series' files; returns the running file count."""
    modality = se.study.protocol[0]
    implicit = se.syntax != "explicit"
    rows, columns = size
    bits = _bits(modality)
    varying: list[tuple[int, str]] = [(0x00080018, "UI"), (0x00200013, "IS")]
    if modality in ("CT", "MR"):
        varying += [(0x00200032, "DS"), (0x00201041, "DS")]
    varying.append((0x7FE00010, "OW" if bits == 16 else "OB"))
    charset = next((str(value) for tag, _vr, value in elements if tag == 0x00080005), None)
    runs = encode_runs(elements, [tag for tag, _vr in varying], charset, implicit)
    sop_class = next(str(value) for tag, _vr, value in elements if tag == 0x00080016)
    series_uid = next(str(value) for tag, _vr, value in elements if tag == 0x0020000E)
    meta_head = meta_tail = b""
    if se.syntax != "raw":
        syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        meta_head = encode_element(0x00020001, "OB", b"\x00\x01", False) + encode_element(
            0x00020002, "UI", sop_class.encode(), False
        )
        meta_tail = (
            encode_element(0x00020010, "UI", syntax.encode(), False)
            + encode_element(0x00020012, "UI", PYDICOM_IMPLEMENTATION_UID.encode(), False)
            + encode_element(0x00020013, "SH", b"PACSINDEX_SAMPLE", False)
        )
    frame = rows * columns * bits // 8
    thickness = float(_thickness(se.description))
    corner = f"{-columns * 0.35:.3f}\\{-rows * 0.35:.3f}\\"
    name = "IM{:05d}" if se.no_extension else "IMG{:05d}.dcm"
    for i in range(1, se.count + 1):
        uid = generate_uid(ORG_ROOT, [series_uid, str(i)]).encode()
        offset = (i * 3 % rows) * columns * bits // 8  # slices differ: each starts at another row
        values = [uid, str(i).encode()]
        if modality in ("CT", "MR"):
            z = f"{(i - 1) * thickness - 100:.3f}"
            values += [(corner + z).encode(), z.encode()]
        values.append(pattern[offset : offset + frame])
        parts = [runs[0]]
        for (tag, vr), value, run in zip(varying, values, runs[1:], strict=True):
            parts += (encode_element(tag, vr, value, implicit), run)
        if meta_tail:
            uid_elem = encode_element(0x00020003, "UI", uid, False)
            meta_len = len(meta_head) + len(uid_elem) + len(meta_tail)
            parts[:0] = (
                b"\x00" * 128,
                b"DICM",
                encode_element(0x00020000, "UL", U32.pack(meta_len), False),
                meta_head,
                uid_elem,
                meta_tail,
            )
        with open(os.path.join(series_dir, name.format(i)), "wb") as fp:
            fp.write(b"".join(parts))
        done += 1
        if progress is not None and done % 200 == 0 and done < total:
            progress(done, total)
    return done


def _bits(modality: str) -> int:
    return 8 if modality == "US" else 16


def _thickness(description: str) -> str:
    return "5.0" if "5MM" in description else "1.0" if "1MM" in description else "3.0"


def _write_other_files(rng: random.Random, study_dir: str, st: _Study) -> int:
    """The clutter Windows and people leave in study folders."""
    written = 0
    if rng.random() < 0.15:
        with open(os.path.join(study_dir, "Thumbs.db"), "wb") as fp:
            fp.write(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rng.randbytes(rng.randrange(1024, 8192)))
        written += 1
    if rng.random() < 0.08:
        with open(os.path.join(study_dir, "desktop.ini"), "wb") as fp:
            fp.write(_DESKTOP_INI)
        written += 1
    if rng.random() < 0.05:
        due = st.when + timedelta(days=rng.randint(1, 14))
        text = f"Prior films requested from {st.institution[0]}. Follow-up due {due:%Y-%m-%d}.\r\n"
        with open(os.path.join(study_dir, "notes.txt"), "wb") as fp:
            fp.write(text.encode("ascii"))
        written += 1
    return written


def _folder_name(text: str) -> str:
    """Letters and digits kept (any script), everything else one underscore: no separators, no dots."""
    out = "".join(ch if ch.isalnum() else "_" for ch in text.upper())
    return "_".join(part for part in out.split("_") if part) or "X"


def _sa_id_number(rng: random.Random, birth: date, sex: str) -> str:
    """A valid South African ID number: YYMMDD, sequence (≥ 5000 male), citizenship 0, 8, Luhn digit."""
    body = f"{birth:%y%m%d}{rng.randint(5000, 9999) if sex == 'M' else rng.randint(0, 4999):04d}08"
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)
