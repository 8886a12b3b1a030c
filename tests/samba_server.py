"""A real Samba server for the SMB tests and the SMB benchmark, plus two small network stand-ins.

`start_samba(base, shares)` runs Debian's smbd on 127.0.0.1 at a free, non-standard port, with its own
smb.conf, state/lock/cache/private directories and test user, all under `base`. The test user
`pacstest` is mapped (smb.conf `username map`) to the Unix account running the tests, so no system user
is created. smbd runs in its own session with stdin from /dev/null (it ends its process group when its
stdin closes) and is stopped with its process group.

`TcpProxy` forwards a port to smbd and can cut every live connection (a NAS dropping off the network for
a moment); `SilentServer` accepts connections and never says a word (a NAS that hangs).

This is a helper module, not conftest.py: a test module gets the `samba` fixture with
`from samba_server import samba_fixture`.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "pacstest"
PASSWORD = "Archive-Reader-1"  # a throwaway password for a throwaway server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0) -> None:
    """Poll until something accepts on 127.0.0.1:port; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            pass
        if proc is not None:
            try:  # the pause between polls doubles as a check that smbd is still alive
                proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"smbd exited with code {proc.returncode} before listening")
    raise RuntimeError(f"nothing listening on port {port} after {timeout:g} s")


def samba_problem() -> str | None:
    """Why a Samba server cannot run here, or None."""
    for tool in ("smbd", "smbpasswd"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} not installed (bash scripts/system-packages.sh installs samba)"
    if os.geteuid() != 0:
        return "smbd needs to run as root to serve files as the test user"
    return None


@dataclass
class SambaServer:
    port: int
    base: Path
    shares: dict[str, Path]
    proc: subprocess.Popen[bytes]
    user: str = USER
    password: str = field(default=PASSWORD, repr=False)

    def url(self, share: str = "archive", path: str = "", port: int | None = None) -> str:
        return f"smb://127.0.0.1:{port or self.port}/{share}" + (f"/{path.strip('/')}" if path else "")

    @property
    def env(self) -> dict[str, str]:
        return {"PACSINDEX_SMB_USER": self.user, "PACSINDEX_SMB_PASSWORD": self.password}

    def log_tail(self, lines: int = 30) -> str:
        log = self.base / "log" / "smbd.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # smbd leads its own session: its group is its own
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _smb_conf(base: Path, port: int, shares: Mapping[str, Path], extra_global: Sequence[str] = ()) -> str:
    d = {name: base / name for name in ("run", "lock", "state", "cache", "private", "log")}
    lines = [
        "[global]",
        "server role = standalone server",
        "security = user",
        "map to guest = never",
        f"smb ports = {port}",
        "interfaces = 127.0.0.1",
        "bind interfaces only = yes",
        "disable netbios = yes",
        f"pid directory = {d['run']}",
        f"lock directory = {d['lock']}",
        f"state directory = {d['state']}",
        f"cache directory = {d['cache']}",
        f"private dir = {d['private']}",
        f"ncalrpc dir = {d['run']}/ncalrpc",
        f"binddns dir = {d['private']}/bind-dns",
        f"log file = {d['log']}/smbd.log",
        "log level = 1",
        f"passdb backend = tdbsam:{d['private']}/passdb.tdb",
        f"username map = {base}/users.map",
        "load printers = no",
        "printing = bsd",
        "printcap name = /dev/null",
        "disable spoolss = yes",
        "server min protocol = SMB2_10",
        "obey pam restrictions = no",
        "unix password sync = no",
    ]
    lines += list(extra_global)  # later lines win: e.g. "server smb encrypt = required"
    for name, path in shares.items():
        lines += [f"[{name}]", f"path = {path}", "read only = yes", "browseable = yes"]
    # A share the test user may not open.
    lines += ["[locked]", f"path = {base}", "read only = yes", "valid users = somebody-else"]
    return "\n".join(lines) + "\n"


def start_samba(
    base: Path, shares: Mapping[str, Path], port: int | None = None, extra_global: Sequence[str] = ()
) -> SambaServer:
    base.mkdir(parents=True, exist_ok=True)
    for name in ("run", "lock", "state", "cache", "private", "log"):
        (base / name).mkdir(exist_ok=True)
    port = port or free_port()
    conf = base / "smb.conf"
    conf.write_text(_smb_conf(base, port, shares, extra_global))
    unix_user = getpass.getuser()
    (base / "users.map").write_text(f"{unix_user} = {USER}\n")
    subprocess.run(
        ["smbpasswd", "-c", str(conf), "-a", "-s", unix_user],
        input=f"{PASSWORD}\n{PASSWORD}\n".encode(),
        check=True,
        capture_output=True,
        timeout=30,
    )
    proc = subprocess.Popen(
        ["smbd", "--foreground", "--no-process-group", f"--configfile={conf}", "--debuglevel=0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = SambaServer(port, base, dict(shares), proc)
    try:
        wait_for_port(port, proc)
    except RuntimeError as exc:
        server.stop()
        raise RuntimeError(f"{exc}\n{server.log_tail()}") from exc
    return server


@pytest.fixture(scope="session", name="samba")
def samba_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaServer]:
    """smbd serving `archive` (an empty folder the tests fill, each under its own subfolder) and `locked`."""
    problem = samba_problem()
    if problem:
        pytest.skip(problem)
    base = tmp_path_factory.mktemp("samba")
    (base / "archive").mkdir()
    server = start_samba(base / "server", {"archive": base / "archive"})
    yield server
    server.stop()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target port, counting the bytes that come back and optionally adding
    `delay_s` each way (a slower link). `cut()` drops every live connection at once; `close()` also stops
    listening, and a new TcpProxy on the same port brings the "NAS" back. `down(data)` sees (and may
    change) every chunk the NAS sends: a recorder, or an attacker on the way."""

    def __init__(
        self,
        target_port: int,
        port: int = 0,
        delay_s: float = 0.0,
        down: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.down = down
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = int(self._server.getsockname()[1])
        self._live: set[socket.socket] = set()
        self._closed = False
        self._lock = threading.Lock()
        self.connections = 0
        self.bytes_down = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()  # the target is gone: refuse this one, keep listening
                continue
            with self._lock:
                closed = self._closed
                if not closed:
                    self._live.update((client, upstream))
                    self.connections += 1
            if closed:  # close() ran while this one was being accepted
                client.close()
                upstream.close()
                return
            for src, dst, down in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, down), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while data := src.recv(262144):
                if self.delay_s:
                    time.sleep(self.delay_s)  # the emulated link's latency, not a wait for anything
                if down:
                    self.bytes_down += len(data)
                    if self.down is not None:
                        data = self.down(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._live.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    @property
    def open_sockets(self) -> int:
        """Sockets of connections going through now (two a connection: the client's and the NAS's)."""
        with self._lock:
            return len(self._live)

    def cut(self) -> int:
        """Drop every connection going through now (new ones still work); returns how many sockets."""
        with self._lock:
            live = list(self._live)
        for s in live:
            self._close(s)
        return len(live)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        try:  # wakes the accepting thread: a plain close() leaves it listening until the next connection
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        self.cut()


class SilentServer:
    """Accepts TCP connections and never answers, like a NAS whose SMB service hangs."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._server.close()
        for conn in self._held:
            conn.close()
