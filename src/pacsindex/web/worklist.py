"""`/api/studies`: the worklist (one row per study, sortable, a page at a time), how many studies match (for
"N new results" while indexing runs), and one study with its series. Searches and opened studies go to the
audit log like the series search does; the count does not (it is the page asking, and holds no names)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from pacsindex.accounts import audit
from pacsindex.errors import NotFound
from pacsindex.index.studies import (
    MAX_STUDY_PAGE,
    STUDY_KEY_PATTERN,
    count_studies,
    get_study,
    search_studies,
)
from pacsindex.web.indexing import index_reader
from pacsindex.web.models import Problem
from pacsindex.web.security import SignedIn, client_address, state

__all__ = ["router"]

router = APIRouter(tags=["worklist"])


class StudyRow(BaseModel):
    StudyKey: str
    StudyInstanceUID: str | None = None
    StudyDate: str | None = None
    StudyTime: str | None = None
    StudyDescription: str | None = None
    AccessionNumber: str | None = None
    ReferringPhysicianName: str | None = None
    InstitutionName: str | None = None
    hospital: str | None = None
    hospital_group: str | None = None
    PatientName: str | None = None
    PatientID: str | None = None
    PatientBirthDate: str | None = None
    PatientSex: str | None = None
    sa_id: str | None = None
    sa_id_issues: str | None = None
    medical_aid: str | None = None
    age: str | None = None
    modalities: list[str] = []
    series_count: int
    image_count: int
    study_uid_shared: bool = Field(
        default=False, description="the StudyInstanceUID is filed under another patient too: check the filing"
    )
    filling: bool = Field(
        default=False,
        description="true while a first index has read only some of the study's files (image_count grows)",
    )


class StudyPage(BaseModel):
    items: list[StudyRow]
    total: int
    limit: int
    offset: int


class StudyCount(BaseModel):
    total: int


class StudySeries(BaseModel):
    SeriesKey: str
    SeriesInstanceUID: str | None = None
    SeriesNumber: int | None = None
    SeriesDescription: str | None = None
    Modality: str | None = None
    BodyPartExamined: str | None = None
    file_count: int
    total_size: int
    filling: bool = Field(
        default=False,
        description="true while a first index has read only some of the series' files (file_count grows)",
    )


class StudyDetail(StudyRow):
    series: list[StudySeries]


Q = Annotated[str, Query(max_length=200, description="words of a name, ID, accession or description")]
Modality = Annotated[str | None, Query(max_length=16, description="CT, MR, CR, US ...")]
Day = Annotated[str | None, Query(max_length=10, description="study date, YYYY-MM-DD")]
Facet = Annotated[str | None, Query(max_length=200)]
Sort = Annotated[str, Query(pattern="^(date|date_asc|name|name_desc)$", description="the order of the rows")]
NO_INDEX_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem},
    404: {"model": Problem, "description": "no index yet"},
}


@router.get("/studies", response_model=StudyPage, responses=NO_INDEX_RESPONSES)
def list_studies(
    request: Request,
    session: SignedIn,
    q: Q = "",
    modality: Modality = None,
    date_from: Day = None,
    date_to: Day = None,
    medical_aid: Facet = None,
    hospital: Facet = None,
    hospital_group: Facet = None,
    sort: Sort = "date",
    limit: Annotated[int, Query(ge=1, le=MAX_STUDY_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> dict[str, Any]:
    """Studies with a series matching every word of `q` and the filters, one row each, newest first (or as
    `sort` says), with `total` matching studies."""
    filters = {
        "modality": modality,
        "date_from": date_from,
        "date_to": date_to,
        "medical_aid": medical_aid,
        "hospital": hospital,
        "hospital_group": hospital_group,
    }
    st = state(request)
    with index_reader(st.settings.db) as conn:
        page = search_studies(conn, q, sort=sort, limit=limit, offset=offset, **filters)
    asked = {"q": q, **filters, "sort": sort if sort != "date" else None, "offset": offset}
    st.audit.record(
        audit.SEARCH, session.user.name, client_address(request), **{k: v for k, v in asked.items() if v}
    )
    return {**page, "limit": limit, "offset": offset}


@router.get("/studies/count", response_model=StudyCount, responses=NO_INDEX_RESPONSES)
def studies_count(
    request: Request,
    q: Q = "",
    modality: Modality = None,
    date_from: Day = None,
    date_to: Day = None,
    medical_aid: Facet = None,
    hospital: Facet = None,
    hospital_group: Facet = None,
) -> dict[str, int]:
    """How many studies the same search matches now: the page compares it with what it shows."""
    with index_reader(state(request).settings.db) as conn:
        total = count_studies(
            conn,
            q,
            modality=modality,
            date_from=date_from,
            date_to=date_to,
            medical_aid=medical_aid,
            hospital=hospital,
            hospital_group=hospital_group,
        )
    return {"total": total}


@router.get("/studies/{key}", response_model=StudyDetail, responses={404: {"model": Problem}})
def study_detail(
    request: Request,
    session: SignedIn,
    key: Annotated[
        str,
        Path(pattern=STUDY_KEY_PATTERN, description="a StudyKey from the worklist"),
    ],
) -> dict[str, Any]:
    """One study, its patient and its series in series-number order."""
    st = state(request)
    with index_reader(st.settings.db) as conn:
        study = get_study(conn, key)
    if study is None:
        raise NotFound("no study with that key (the index may have changed: search again)")
    st.audit.record(
        audit.OPEN_STUDY,
        session.user.name,
        client_address(request),
        StudyKey=study["StudyKey"],
        PatientName=study["PatientName"],
        PatientID=study["PatientID"],
        StudyDate=study["StudyDate"],
        StudyDescription=study["StudyDescription"],
    )
    return study
