"""`/api/search` and `/api/series/{SeriesKey}`: the same matching as `pacsindex search`, and one series in
full. Both are written to the audit log (who looked for whom, who opened what)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from pacsindex import audit, store
from pacsindex.errors import NotFound
from pacsindex.search import MAX_LIMIT, search
from pacsindex.web.indexing import index_reader
from pacsindex.web.models import Problem, SeriesDetail, SeriesSummary
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
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Series whose patient name, ID, accession or descriptions hold every word of `q` (any case, accents
    optional), newest study first. No match: `[]`."""
    st = state(request)
    with index_reader(st.settings.db) as conn:
        rows = search(
            conn, q, modality=modality, date_from=date_from, date_to=date_to, limit=limit, offset=offset
        )
    asked = {"q": q, "modality": modality, "date_from": date_from, "date_to": date_to, "offset": offset}
    st.audit.record(
        audit.SEARCH, session.user.name, client_address(request), **{k: v for k, v in asked.items() if v}
    )
    return rows


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
