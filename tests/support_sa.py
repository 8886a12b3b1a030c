"""A small South African archive: an SA ID that disagrees with its header, medical aids and hospitals."""

from __future__ import annotations

from pathlib import Path

from conftest import write_dicom

__all__ = ["DISCOVERY", "SA_ID", "write_sa_tree"]

SA_ID = "8001015009087"  # says born 1980-01-01, male; the header says 1981-02-03, female
DISCOVERY = "Discovery Health Medical Scheme"


def write_sa_tree(root: Path) -> Path:
    """Three patients: one whose SA ID disagrees with the header (GEMS, Groote Schuur), one on Discovery at
    Netcare Milpark whose ID agrees, and one at Life Fourways with no medical aid."""
    for i in range(2):
        write_dicom(
            root / "MOKOENA" / f"IM{i}.dcm",
            PatientName="MOKOENA^SIPHO",
            PatientID=SA_ID,
            PatientBirthDate="19810203",
            PatientSex="F",
            InsurancePlanIdentification="GEMS",
            InstitutionName="Groote Schuur Hospital",
            StudyInstanceUID="2.25.1",
            SeriesInstanceUID="2.25.1.1",
            StudyDate="20240301",
            InstanceNumber=i + 1,
        )
    write_dicom(
        root / "VDMERWE" / "IM0.dcm",
        PatientName="VAN DER MERWE^ANNA",
        PatientID="H12345",
        OtherPatientIDs="750315 0123 087",
        PatientBirthDate="19750315",
        PatientSex="F",
        InsurancePlanIdentification="DISCOVERY HEALTH",
        StudyInstanceUID="2.25.2",
        SeriesInstanceUID="2.25.2.1",
        StudyDate="20240302",
        Modality="MR",
    )
    write_dicom(
        root / "NAIDOO" / "IM0.dcm",
        PatientName="NAIDOO^PRIYA",
        PatientID="LF-77",
        InstitutionName="Life Fourways Hospital",
        StudyInstanceUID="2.25.3",
        SeriesInstanceUID="2.25.3.1",
        StudyDate="20240303",
    )
    return root
