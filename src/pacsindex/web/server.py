"""Running the app under uvicorn: in the foreground for `pacsindex serve`, or in a background thread on a
free port (`ThreadedServer`) for the tests and the benchmark, which talk to it over a real socket.

uvicorn's own access log is off: it would print query strings, and a query string holds the patient name
that was searched for. The app logs method, path, status and time instead.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from pacsindex.config.settings import Settings
from pacsindex.errors import ConfigError


def uvicorn_config(
    app: Any, settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host or settings.host,
        port=settings.port if port is None else port,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


class Server(uvicorn.Server):
    """uvicorn's server that, when it starts to shut down, tells the app (`app.state.closing`, a
    threading.Event) so long-lived answers such as the indexing event stream end instead of being waited
    for."""

    async def shutdown(self, sockets: Any = None) -> None:
        closing = getattr(getattr(self.config.app, "state", None), "closing", None)
        if isinstance(closing, threading.Event):
            closing.set()
        await super().shutdown(sockets)


def check_port(host: str, port: int) -> None:
    """ConfigError when `host:port` cannot be listened on (another server has it, or no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (another pacsindex serve?): stop that "
                    "server or choose another --port"
                ) from exc
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def serve(app: Any, settings: Settings) -> None:
    """Serve until Ctrl-C (a running index job is stopped cleanly and resumes on the next start)."""
    Server(uvicorn_config(app, settings)).run()


class ThreadedServer:
    """uvicorn serving `app` in a daemon thread; `url` once entered. Port 0 picks a free one."""

    def __init__(self, app: Any, settings: Settings, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = Server(uvicorn_config(app, settings, host=host, port=port))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.01)
        sockets = [s for server in self.server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(30)
