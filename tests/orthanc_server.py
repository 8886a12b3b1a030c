"""A real Orthanc (the practice's PACS) for the send-to-Orthanc and DICOMweb tests.

`start_orthanc(workdir)` runs Debian's `/usr/sbin/Orthanc` (packages orthanc, orthanc-dicomweb) on free,
non-standard HTTP and DICOM ports with its own JSON configuration, storage and index under `workdir`, so
the system Orthanc the Debian package may have started on 8042/4242 is never touched. HTTP Basic
authentication is on with one registered user; the DICOMweb plugin is loaded and enabled at
`/dicom-web/`. `extra_config` is merged deeply into the configuration, e.g.
`{"DicomWeb": {"Servers": {"pacsindex": ["http://127.0.0.1:8123/dicom-web/", "user", "pw"]}}}`.

Readiness is polled on `GET /system` with a deadline. Orthanc runs in its own session with its log in
`workdir/orthanc.log` and is stopped with its process group.

This is a helper module, not conftest.py: a test module gets the `orthanc` fixture with
`from orthanc_server import orthanc_fixture`, or calls `start_orthanc` itself.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

USER = "pacsorthanc"
PASSWORD = "Pacs-Sender-1"  # a throwaway password for a throwaway server
ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN_CANDIDATES = (
    Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
    Path("/usr/lib/orthanc/libOrthancDicomWeb.so"),
)


def orthanc_binary() -> Path | None:
    found = shutil.which("Orthanc")
    if found:
        return Path(found)
    return ORTHANC if ORTHANC.exists() else None


def dicomweb_plugin() -> Path | None:
    """The DICOMweb plugin's shared library, from `dpkg -L orthanc-dicomweb` or the usual places."""
    try:
        listed = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        listed = []
    for line in listed:
        if "libOrthancDicomWeb.so" in line and Path(line).exists():
            return Path(line)
    return next((p for p in DICOMWEB_PLUGIN_CANDIDATES if p.exists()), None)


def orthanc_problem() -> str | None:
    """Why an Orthanc server cannot run here, or None."""
    if orthanc_binary() is None:
        return "Orthanc not installed (bash scripts/system-packages.sh installs orthanc and orthanc-dicomweb)"
    if dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (bash scripts/system-packages.sh installs it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in: nested objects are merged key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class OrthancServer:
    http_port: int
    dicom_port: int
    workdir: Path
    proc: subprocess.Popen[bytes]
    config: dict[str, Any]
    user: str = USER
    password: str = field(default=PASSWORD, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        root = str(self.config.get("DicomWeb", {}).get("Root", "/dicom-web/"))
        return self.url + "/" + root.strip("/") + "/"

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 30.0) -> Any:
        """Call Orthanc's REST API as the registered user; the JSON answer (or None for an empty one)."""
        req = urllib.request.Request(self.url + path, data=body, method=method)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        if body is not None:
            req.add_header("Content-Type", "application/octet-stream")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
        return json.loads(data) if data.strip() else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def instance_uids(self) -> set[str]:
        """The SOPInstanceUID of every instance Orthanc holds."""
        uids = set()
        for orthanc_id in self.get("/instances"):
            tags = self.get(f"/instances/{orthanc_id}/simplified-tags")
            uids.add(str(tags["SOPInstanceUID"]))
        return uids

    def clear(self) -> None:
        """Delete every patient (and so every study, series and instance) Orthanc holds."""
        for patient in self.get("/patients"):
            self.request("DELETE", f"/patients/{patient}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # Orthanc leads its own session: its group is its own
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def base_config(workdir: Path, http_port: int, dicom_port: int, plugin: Path | None) -> dict[str, Any]:
    return {
        "Name": "PACSINDEX-TEST",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "StorageCompression": False,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "DicomServerEnabled": True,
        "DicomAet": "PACSTEST",
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "SslEnabled": False,
        "HttpDescribeErrors": True,
        "SaveJobs": False,
        "ConcurrentJobs": 1,
        "HttpThreadsCount": 8,
        "Plugins": [str(plugin)] if plugin is not None else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Servers": {}},
    }


def _system_ready(url: str, timeout: float = 1.0) -> bool:
    req = urllib.request.Request(url + "/system")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bool(json.loads(resp.read()).get("Version"))
    except (OSError, ValueError):
        return False


def start_orthanc(
    workdir: Path, *, extra_config: Mapping[str, Any] | None = None, timeout: float = 60.0
) -> OrthancServer:
    """Start Orthanc with its own configuration under `workdir` and wait until `/system` answers."""
    binary = orthanc_binary()
    if binary is None:
        raise RuntimeError(orthanc_problem() or "Orthanc not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("storage", "index"):
        (workdir / name).mkdir(exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    while dicom_port == http_port:
        dicom_port = free_port()
    config = deep_merge(base_config(workdir, http_port, dicom_port, dicomweb_plugin()), extra_config or {})
    conf_path = workdir / "orthanc.json"
    conf_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log_path = workdir / "orthanc.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(binary), f"--logfile={log_path}", str(conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = OrthancServer(int(config["HttpPort"]), int(config["DicomPort"]), workdir, proc, config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _system_ready(server.url):
            return server
        try:  # the pause between polls doubles as a check that Orthanc is still alive
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(
            f"Orthanc exited with code {proc.returncode} before answering\n{server.log_tail()}"
        )
    server.stop()
    raise RuntimeError(f"Orthanc did not answer /system within {timeout:g} s\n{server.log_tail()}")


@pytest.fixture(scope="session", name="orthanc")
def orthanc_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """One Orthanc for the session; tests that count instances call `orthanc.clear()` first."""
    problem = orthanc_problem()
    if problem:
        pytest.skip(problem)
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()
