"""The one live-server harness: `serve(...)` runs `create_app` under uvicorn on a free port (a real
socket), with staff accounts made and signed in, and closes everything afterwards. conftest's
`live_server` fixture is the factory tests use; a module-scoped fixture may also enter `serve` itself."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI

from pacsindex.config.settings import Settings
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer

__all__ = ["PASSWORD", "LiveServer", "fast_hasher", "serve"]

PASSWORD = "correct horse battery"


def fast_hasher() -> PasswordHasher:
    """argon2 at its cheapest: sign-ins in tests take milliseconds, not a second each."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class LiveServer:
    """A running app: its URL, the app (and so `app.state.pacsindex`), its settings and signed-in clients."""

    url: str
    app: FastAPI
    settings: Settings
    _stack: ExitStack = field(repr=False)

    def client(self, **kwargs: Any) -> httpx.Client:
        """A new client, not signed in, closed with the server."""
        return self._stack.enter_context(httpx.Client(base_url=self.url, timeout=60, **kwargs))

    def sign_in(self, name: str, password: str = PASSWORD) -> tuple[httpx.Client, dict[str, str]]:
        """A new client signed in as `name`, and the CSRF header its state-changing requests need."""
        client = self.client()
        r = client.post("/auth/signin", json={"name": name, "password": password})
        assert r.status_code == 200, r.text
        return client, {"X-CSRF-Token": r.json()["csrf_token"]}


@contextmanager
def serve(
    base: Path,
    *,
    users: Mapping[str, bool] | None = None,
    settings: Settings | None = None,
    **create_app_kwargs: Any,
) -> Iterator[LiveServer]:
    """Serve an index in `base` (or `settings.db`); `users` maps a name to whether it is an admin, each with
    PASSWORD. `create_app_kwargs` (clock, scan_options, source_for, hasher) go to create_app."""
    settings = settings or Settings(db=base / "pacsindex.db", workers=1)
    create_app_kwargs.setdefault("hasher", fast_hasher())
    app = create_app(settings, **create_app_kwargs)
    for name, admin in (users or {}).items():
        app.state.pacsindex.accounts.add_user(name, PASSWORD, admin=admin)
    with ExitStack() as stack:
        server = stack.enter_context(ThreadedServer(app, settings))
        yield LiveServer(server.url, app, settings, stack)
