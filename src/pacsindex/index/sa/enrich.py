"""Fields derived for South African practices when a patient or study enters the index: the SA ID number
in PatientID/OtherPatientIDs (with data-quality flags against PatientBirthDate/PatientSex), the medical
scheme, and the hospital and its group. The matching tables are configurable (see `samatch`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pacsindex.dicom.headers import HeaderRecord
from pacsindex.index.sa.said import check_digit_typo, parse_sa_id, quality_issues
from pacsindex.index.sa.samatch import Tables, default_tables


@dataclass(frozen=True, slots=True)
class PatientExtras:
    sa_id: str | None
    sa_id_issues: str | None  # "; "-joined flags, or None when the header agrees with the ID number
    medical_aid: str | None


@dataclass(frozen=True, slots=True)
class StudyExtras:
    hospital: str | None
    hospital_group: str | None


class Enricher:
    def __init__(self, tables: Tables | None = None) -> None:
        self.tables = tables or default_tables()

    def patient(self, rec: HeaderRecord) -> PatientExtras:
        sa_id = parse_sa_id(rec.PatientID) or parse_sa_id(rec.OtherPatientIDs)
        issues = quality_issues(sa_id, rec.PatientBirthDate, rec.PatientSex) if sa_id else []
        if sa_id is None:
            typo = check_digit_typo(rec.PatientID) or check_digit_typo(rec.OtherPatientIDs)
            if typo:
                issues.append(f"SA ID number {typo} fails its check digit: probable typo")
        # Structured fields first (the issuers of OtherPatientIDsSequence items are the standard place);
        # PatientComments is free text.
        aid = self.tables.medical_aid(
            rec.InsurancePlanIdentification,
            rec.IssuerOfPatientID,
            rec.other_id_issuers,
            rec.OtherPatientIDs,
            free=(rec.PatientComments,),
        )
        return PatientExtras(
            sa_id.number if sa_id else None, "; ".join(issues) or None, aid.name if aid else None
        )

    def study(self, rec: HeaderRecord) -> StudyExtras:
        found = self.tables.hospital(rec.InstitutionName, rec.StationName, free=(rec.InstitutionAddress,))
        return StudyExtras(found.name if found else None, found.group if found else None)
