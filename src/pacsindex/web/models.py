"""The JSON shapes of the API (pydantic models): what the OpenAPI description at /docs shows, what request
bodies are checked against, and what responses are trimmed to.

DICOM fields keep their DICOM keywords (PatientName, StudyDate as YYYYMMDD); ours are snake_case.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_surrogates(text: str) -> str:
    # JSON may carry lone UTF-16 surrogates ("\ud800"); they cannot be stored or hashed as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains characters that are not valid Unicode text") from None
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


Text = Annotated[str, AfterValidator(_no_surrogates)]
UserName = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"),
    AfterValidator(_no_surrogates),
]
Password = Annotated[str, Field(min_length=10, max_length=1024), AfterValidator(_no_surrogates)]
Root = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_surrogates)]


class Problem(BaseModel):
    detail: str


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(min_length=1, max_length=256)]
    password: Annotated[Text, Field(min_length=1, max_length=1024)]


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: Annotated[Text, Field(min_length=1, max_length=1024)]
    new_password: Password


class Me(BaseModel):
    name: str
    is_admin: bool
    csrf_token: str = Field(description="send it back in the X-CSRF-Token header of every POST and PATCH")
    idle_minutes: int
    timezone: str
    roots: list[str] = Field(description="the configured indexing roots")


class IndexStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roots: list[Root] | None = Field(
        default=None,
        max_length=32,
        description="folders, UNC paths or smb:// URLs to index; default: the configured roots. "
        "Only an admin may name roots that are not configured.",
    )


class IndexStatus(BaseModel):
    run_id: int | None = None
    roots: list[str] = []
    state: str = Field(description="idle, running, completed, cancelled, failed or interrupted")
    running: bool
    enumerated_files: int = Field(description="files found so far (the total once enumeration_done)")
    enumeration_done: bool
    files_processed: int
    files_read: int
    files_unchanged: int
    files_removed: int
    files_from_records: int = Field(default=0, description="indexed from a DICOMDIR without opening the file")
    series_count: int | None = None
    series_filling: int | None = Field(
        default=None, description="of the series, how many are still being indexed (a first index's survey)"
    )
    errors: int
    non_dicom: int
    started_at: str | None = Field(default=None, description="ISO 8601 with the offset of `timezone`")
    last_updated: str | None = None
    files_per_s: float
    eta_s: float | None = None
    percent: float | None = Field(default=None, description="null until the total number of files is known")
    message: str | None = None
    started_by: str | None = None
    timezone: str


class SeriesSummary(BaseModel):
    SeriesKey: str
    PatientName: str | None = None
    PatientID: str | None = None
    PatientBirthDate: str | None = None
    PatientSex: str | None = None
    StudyInstanceUID: str | None = None
    StudyDate: str | None = None
    StudyDescription: str | None = None
    AccessionNumber: str | None = None
    SeriesInstanceUID: str | None = None
    SeriesNumber: int | None = None
    SeriesDescription: str | None = None
    Modality: str | None = None
    file_count: int
    filling: bool = Field(
        default=False,
        description="true while a first index has read only some of the series' files (file_count grows)",
    )
    sa_id: str | None = Field(
        default=None, description="a valid South African ID number in PatientID or OtherPatientIDs"
    )
    sa_id_issues: str | None = Field(
        default=None,
        description="where the header disagrees with the SA ID number ('; '-separated sentences), or null",
    )
    medical_aid: str | None = Field(default=None, description="the medical scheme, e.g. Discovery Health")
    hospital: str | None = Field(default=None, description="the hospital, e.g. Netcare Milpark Hospital")
    hospital_group: str | None = Field(default=None, description="e.g. Netcare, Life Healthcare, Public")
    study_uid_shared: bool = Field(
        default=False,
        description="data quality: this StudyInstanceUID also names a study of another patient (misfiled?)",
    )


class SeriesFile(BaseModel):
    path: str
    size: int
    mtime_ns: int
    SOPInstanceUID: str | None = None
    SOPClassUID: str | None = None
    InstanceNumber: int | None = None
    TransferSyntaxUID: str | None = None


class SeriesDetail(SeriesSummary):
    OtherPatientIDs: str | None = None
    IssuerOfPatientID: str | None = None
    StudyTime: str | None = None
    ReferringPhysicianName: str | None = None
    InstitutionName: str | None = None
    StudyID: str | None = None
    BodyPartExamined: str | None = None
    SeriesDate: str | None = None
    Manufacturer: str | None = None
    StationName: str | None = None
    InsurancePlanIdentification: str | None = None
    InstitutionAddress: str | None = None
    total_size: int
    files: list[SeriesFile]


class Problematic(BaseModel):
    path: str
    reason: str | None = None


class ProblemPage(BaseModel):
    items: list[Problematic]
    kind: str
    limit: int
    offset: int
    has_more: bool


class UserOut(BaseModel):
    name: str
    is_admin: bool
    disabled: bool
    created_at: str
    last_signin_at: str | None = None


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: UserName
    admin: bool = False
    password: Password | None = Field(default=None, description="leave out to have one generated")


class CreatedUser(UserOut):
    password: str | None = Field(default=None, description="the generated password, shown this once")


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    admin: bool | None = None
    disabled: bool | None = None
    password: Password | None = None
    generate_password: bool = False


class AuditEntry(BaseModel):
    id: int
    at: str
    user: str | None = None
    client: str | None = None
    action: str
    detail: dict[str, object]
    repeats: int = Field(default=1, description="identical refusals from one address within an hour")
    about: dict[str, object] = Field(default={}, description="the series, study or share it names, now")


class SettingsOut(BaseModel):
    db: str
    roots: list[str]
    timezone: str
    workers: int
    session_idle_minutes: int
    secure_cookies: bool
    signin_failures_per_user: int
    signin_failures_per_address: int
    signin_lockout_minutes: int


class Facet(BaseModel):
    name: str
    group: str | None = Field(default=None, description="a hospital's group")
    count: int = Field(description="patients (medical aids) or studies (hospitals, groups) in the index")


class SearchFacets(BaseModel):
    medical_aids: list[Facet]
    hospitals: list[Facet]
    hospital_groups: list[Facet]


NasText = Annotated[str, Field(max_length=1024), AfterValidator(_no_surrogates)]


class NasSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: NasText = Field(description="the NAS's host name, IPv4 or IPv6 address")
    share: NasText = Field(description="the share's name, e.g. Image Archiving")
    path: NasText = Field(default="", description="folders inside the share to index, e.g. 2019/03")
    user: NasText = Field(description="the NAS account; DOMAIN\\user works too")
    password: NasText | None = Field(
        default=None, description="write-only; leave out to keep the saved one (same host and port)"
    )
    clear_password: bool = Field(default=False, description="remove the saved password")
    domain: NasText = ""
    port: int = Field(default=445, description="1 to 65535; SMB uses 445")


class NasSettingsOut(BaseModel):
    configured: bool = Field(description="false until an admin saves NAS settings")
    host: str
    share: str
    path: str
    user: str
    domain: str
    port: int
    password_set: bool = Field(description="the password itself is never returned")
    url: str | None = Field(description="the indexing root these settings add: smb://host[:port]/share/path")


class NasTestResult(BaseModel):
    url: str
    entries: list[str] = Field(description="the first entries of the share or path; folders end in '/'")
