"""`/api/search` and `/api/series/{SeriesKey}`: the same matching as `pacsindex search` (South African
filters included: medical aid, hospital, hospital group), and one series in full. Both are written to the
audit log (who looked for whom, who opened what). `/api/search/facets` lists the medical aids, hospitals
and groups found in the index, for the filters' choices."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from pacsindex.accounts import audit
from pacsindex.errors import NotFound
from pacsindex.index import store
from pacsindex.index.search import MAX_LIMIT, search
from pacsindex.web.indexing import index_reader
from pacsindex.web.models import Problem, SearchFacets, SeriesDetail, SeriesSummary
from pacsindex.web.security import SignedIn, client_address, state

router = APIRouter(tags=["search"])


@router.get(
    "/search",
    response_model=list[SeriesSummary],
    responses={400: {"model": Problem}, 404: {"model": Problem, "description": "no index yet"}},
)
def search_series(
    request: Request,
    session: SignedIn,
    q: Annotated[
        str, Query(max_length=200, description="words of a name, ID, accession or description")
    ] = "",
    modality: Annotated[str | None, Query(max_length=16, description="CT, MR, CR, US ...")] = None,
    date_from: Annotated[str | None, Query(max_length=10, description="study date, YYYY-MM-DD")] = None,
    date_to: Annotated[str | None, Query(max_length=10, description="study date, YYYY-MM-DD")] = None,
    medical_aid: Annotated[
        str | None,
        Query(max_length=200, description="a medical scheme, e.g. Discovery Health (see /api/search/facets)"),
    ] = None,
    hospital: Annotated[
        str | None, Query(max_length=200, description="a hospital, e.g. Netcare Milpark Hospital")
    ] = None,
    hospital_group: Annotated[
        str | None, Query(max_length=200, description="a hospital group, e.g. Netcare, Life Healthcare")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Series whose patient name, ID, accession or descriptions hold every word of `q` (any case, accents
    optional), newest study first, narrowed by the filters given (medical aid, hospital and group match
    their names in any letter case). No match: `[]`."""
    st = state(request)
    with index_reader(st.settings.db) as conn:
        rows = search(
            conn,
            q,
            modality=modality,
            date_from=date_from,
            date_to=date_to,
            medical_aid=medical_aid,
            hospital=hospital,
            hospital_group=hospital_group,
            limit=limit,
            offset=offset,
        )
    asked = {
        "q": q,
        "modality": modality,
        "date_from": date_from,
        "date_to": date_to,
        "medical_aid": medical_aid,
        "hospital": hospital,
        "hospital_group": hospital_group,
        "offset": offset,
    }
    st.audit.record(
        audit.SEARCH,
        session.user.name,
        client_address(request),
        **{k: v for k, v in asked.items() if v},
        series=[r["SeriesKey"] for r in rows],  # whom it found, by id (a patient's access report)
    )
    return rows


@router.get(
    "/search/facets",
    response_model=SearchFacets,
    responses={404: {"model": Problem, "description": "no index yet"}},
)
def search_facets(request: Request) -> dict[str, Any]:
    """The medical aids (with their number of patients), hospitals and hospital groups (with their number
    of studies) in the index, most frequent first: the values the filters of /api/search take."""
    with index_reader(state(request).settings.db) as conn:
        return store.facets(conn)


@router.get(
    "/series/{key}",
    response_model=SeriesDetail,
    responses={404: {"model": Problem}},
)
def series_detail(
    request: Request,
    session: SignedIn,
    key: Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{40}$", description="a SeriesKey from a search result")],
) -> dict[str, Any]:
    """Every stored field of one series, and its files in instance order."""
    st = state(request)
    with index_reader(st.settings.db) as conn:
        detail = store.get_series(conn, key.lower())
        if detail is None:
            raise NotFound("no series with that SeriesKey (the index may have changed: search again)")
        detail["files"] = list(store.series_files(conn, detail.pop("series_id")))
    st.audit.record(
        audit.OPEN_SERIES,
        session.user.name,
        client_address(request),
        SeriesKey=detail["SeriesKey"],
        PatientName=detail["PatientName"],
        PatientID=detail["PatientID"],
        StudyDate=detail["StudyDate"],
        Modality=detail["Modality"],
    )
    return detail
