"""Admin routes for API tokens (the way DICOMweb clients sign in): `POST /api/tokens` makes one and shows
its value this once, `GET /api/tokens` lists them (never a value), `POST /api/tokens/{id}/revoke` ends one.
Admin-only and CSRF-checked like every `/api/*` change; making and revoking go to the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from pacsindex.accounts import audit
from pacsindex.accounts.apitokens import ApiTokens
from pacsindex.web.models import Problem, Text
from pacsindex.web.security import Admin, admin, client_address, state

router = APIRouter(tags=["api tokens"], dependencies=[Depends(admin)], responses={403: {"model": Problem}})


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$",
            description="which PACS, viewer or script will use it, e.g. 'Orthanc main'",
        ),
    ]


class TokenOut(BaseModel):
    id: int
    name: str
    created_by: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    active: bool


class CreatedToken(TokenOut):
    token: str = Field(description="the token itself: shown this once, never again")


def api_tokens(request: Request) -> ApiTokens:
    tokens: ApiTokens = request.app.state.apitokens
    return tokens


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(request: Request) -> list[dict[str, Any]]:
    """Every API token, those in force first; the token values are never shown again."""
    return [t.public() for t in api_tokens(request).list_tokens()]


@router.post("/tokens", status_code=201, response_model=CreatedToken, responses={409: {"model": Problem}})
def create_token(body: NewToken, request: Request, session: Admin) -> dict[str, Any]:
    """Make a token for a DICOMweb client. Its value is in this answer only: copy it now."""
    token, secret = api_tokens(request).create(body.name, session.user.name)
    state(request).audit.record(
        audit.TOKEN_CREATE, session.user.name, client_address(request), id=token.id, name=token.name
    )
    return {**token.public(), "token": secret}


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut, responses={404: {"model": Problem}})
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**62)], request: Request, session: Admin
) -> dict[str, Any]:
    """End a token at once and for good: clients using it get 401 from their next request."""
    token = api_tokens(request).revoke(token_id)
    state(request).audit.record(
        audit.TOKEN_REVOKE, session.user.name, client_address(request), id=token.id, name=token.name
    )
    return token.public()
