"""A real Firebird 3 server for the catalog tests.

`start_firebird(base)` runs Debian's SuperServer (`/usr/sbin/firebird`, package firebird3.0-server) on
127.0.0.1 at a free, non-standard port, with everything it writes under `base`, and never touches the
system's /etc/firebird or service (Debian leaves it stopped where there is no systemd):

- `FIREBIRD=base` makes the engine read firebird.conf, databases.conf and plugins.conf from `base`. The
  character-set module is then loaded from `base/intl/libfbintl.so` (Debian's fbintl.conf says
  `$(root)/intl/fbintl`), so it is copied there: with a symlink instead, Firebird 3.0.11 loads it but then
  calls WIN1252 and the other legacy character sets "not installed". `firebird.msg` (message texts) is
  symlinked. Plugins (Srp, Engine12) and fbintl.conf come from the compiled-in folders.
- `FIREBIRD_LOCK` and `FIREBIRD_TMP` move the lock files and sort space into `base`.
- firebird.conf sets `RemoteServicePort`, binds to 127.0.0.1 only, points `SecurityDatabase` at
  `base/security3.fdb` and restricts `DatabaseAccess` to `base/data`.
- The security database is made before the server starts, with `isql-fb` in embedded mode (the engine
  opens the file itself, no server and no password needed): `create database`, then
  `create user SYSDBA password ... using plugin Srp`, the way Firebird 3's own docs initialise one.

The server's own log still goes to /var/log/firebird/firebird3.0.log: that folder is compiled in. The
server runs in its own session and is stopped with its process group.

This is a helper module, not conftest.py: a test module gets the `firebird` fixture with
`from firebird_server import firebird_fixture`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "SYSDBA"
PASSWORD = "Catalog-Reader-1"  # a throwaway password for a throwaway server
SERVER = Path("/usr/sbin/firebird")
ISQL = "isql-fb"
FB_HOME = Path("/usr/lib/x86_64-linux-gnu/firebird/3.0")
SYSTEM_CONF = Path("/etc/firebird/3.0")
SERVER_LOG = Path("/var/log/firebird/firebird3.0.log")


def firebird_problem() -> str | None:
    """Why a Firebird server cannot run here, or None."""
    if not SERVER.exists() or shutil.which(ISQL) is None:
        return "Firebird 3 not installed (bash scripts/system-packages.sh installs firebird3.0-server)"
    if not (FB_HOME / "intl").is_dir() or not (SYSTEM_CONF / "plugins.conf").exists():
        return f"unexpected Firebird layout: no {FB_HOME / 'intl'} or {SYSTEM_CONF / 'plugins.conf'}"
    try:
        import firebird.driver  # noqa: F401
    except ImportError:
        return "firebird-driver not installed (pip install -e .)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Poll until something accepts on 127.0.0.1:port; fail early if the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            pass
        try:  # the pause between polls doubles as a check that the server is still alive
            proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"the server exited with code {proc.returncode} before listening")
    raise RuntimeError(f"nothing listening on port {port} after {timeout:g} s")


@dataclass
class FirebirdServer:
    port: int
    base: Path
    proc: subprocess.Popen[bytes]
    user: str = USER
    password: str = field(default=PASSWORD, repr=False)

    @property
    def data(self) -> Path:
        """The only folder this server may open databases in."""
        return self.base / "data"

    def url(self, database: Path | str, port: int | None = None) -> str:
        return f"firebird://{self.user}@127.0.0.1:{port or self.port}/{str(database).lstrip('/')}"

    def dsn(self, database: Path | str) -> str:
        return f"127.0.0.1/{self.port}:{database}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _env(base: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FIREBIRD": str(base),
        "FIREBIRD_LOCK": str(base / "lock"),
        "FIREBIRD_TMP": str(base / "tmp"),
    }


def _isql(base: Path, sql: str, *args: str) -> None:
    done = subprocess.run(
        [ISQL, "-q", "-b", *args], input=sql.encode(), env=_env(base), capture_output=True, timeout=60
    )
    output = (done.stdout + done.stderr).decode(errors="replace").strip()
    if done.returncode != 0 or output:
        raise RuntimeError(f"isql-fb {' '.join(args)} failed ({done.returncode}): {output}")


def start_firebird(base: Path, port: int | None = None) -> FirebirdServer:
    for name in ("lock", "tmp", "data"):
        (base / name).mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    security = base / "security3.fdb"
    (base / "firebird.conf").write_text(
        "\n".join(
            [
                f"RemoteServicePort = {port}",
                "RemoteBindAddress = 127.0.0.1",
                f"SecurityDatabase = {security}",
                f"DatabaseAccess = Restrict {base / 'data'}",
                "ServerMode = Super",
                "UdfAccess = None",
                "AuthServer = Srp",
                "UserManager = Srp",
                "WireCrypt = Enabled",
                "",
            ]
        )
    )
    (base / "databases.conf").write_text("")
    shutil.copy(SYSTEM_CONF / "plugins.conf", base / "plugins.conf")
    (base / "intl").mkdir(exist_ok=True)
    shutil.copy(FB_HOME / "intl" / "libfbintl.so", base / "intl" / "libfbintl.so")
    if not (base / "firebird.msg").exists():
        (base / "firebird.msg").symlink_to(FB_HOME / "firebird.msg")
    if not security.exists():
        _isql(base, f"create database '{security}';\n")
        _isql(
            base,
            f"create user {USER} password '{PASSWORD}' using plugin Srp;\ncommit;\n",
            "-user",
            USER,
            str(security),
        )
    proc = subprocess.Popen(
        [str(SERVER)],
        env=_env(base),
        cwd=base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = FirebirdServer(port, base, proc)
    try:
        wait_for_port(port, proc)
    except RuntimeError as exc:
        server.stop()
        tail = SERVER_LOG.read_text(errors="replace")[-2000:] if SERVER_LOG.exists() else ""
        raise RuntimeError(f"Firebird did not start: {exc}\n{tail}") from exc
    return server


@pytest.fixture(scope="session", name="firebird")
def firebird_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirebirdServer]:
    """A running private Firebird server; databases go in `firebird.data`."""
    problem = firebird_problem()
    if problem:
        pytest.skip(problem)
    server = start_firebird(tmp_path_factory.mktemp("firebird"))
    yield server
    server.stop()
