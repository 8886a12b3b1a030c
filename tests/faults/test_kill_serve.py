"""`kill -9` of `pacsindex serve` while an indexing run and a share download are going (issue 14, point 5c):
on restart the index opens, the run started again resumes where the killed one stopped (files it had
committed are not read again), the share's access log shows the download as incomplete, and the killed
server's worker processes (kept by the service between runs) do not linger. (Orthanc sends
resuming after a restart belong to the operations issue.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from conftest import write_dicom
from hardening_kit import PASSWORD, press_download
from pacsindex.accounts.auth import Accounts
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree
from samba_server import free_port, wait_for_port
from support_wait import wait_until


def start_serve(db: Path, roots: list[str], port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PACSINDEX_ROOTS": os.pathsep.join(roots),
        "PACSINDEX_WORKERS": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pacsindex", "serve", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, timeout=60)
    return proc


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            children = psutil.Process(proc.pid).children(recursive=True)
            proc.kill()
            proc.wait(30)
            for child in children:
                if alive(child):
                    child.kill()


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def spawned_by(server: psutil.Process) -> list[psutil.Process]:
    return [p for p in server.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]


def draws(p: psutil.Process) -> bool:
    """A render process: it has numpy loaded (a header reader never imports it)."""
    return any("numpy" in m.path for m in p.memory_maps())


def signed_in(url: str) -> tuple[httpx.Client, dict[str, str]]:
    c = httpx.Client(base_url=url, timeout=30)
    me = c.post("/auth/signin", json={"name": "alice", "password": PASSWORD}).json()
    return c, {"X-CSRF-Token": me["csrf_token"]}


def test_kill_9_mid_run_and_download_then_restart(tmp_path: Path, procs: list[Any]) -> None:
    shared, archive, db = tmp_path / "shared", tmp_path / "archive", tmp_path / "data" / "index.db"
    for i in range(24):  # a 12 MiB series: far more than the socket buffers hold
        write_dicom(shared / f"IM{i:03d}.dcm", SeriesInstanceUID="1.2.3.99", InstanceNumber=i + 1, rows=512)
    write_sample(archive, patients=12, files=4000, seed=9)
    run_index(db, [LocalTree(str(shared))], ScanOptions(workers=1))
    Accounts(db).add_user("alice", PASSWORD, admin=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs.append(start_serve(db, [str(shared), str(archive)], port))

    c, csrf = signed_in(url)
    [series] = c.get("/api/search", params={"q": ""}).json()  # only the big series is indexed so far
    key = series["SeriesKey"]
    made = c.post("/api/shares", json={"SeriesKey": key}, headers=csrf).json()
    download = socket.socket()
    download.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    download.connect(("127.0.0.1", port))
    zip_path = press_download(url, made["token"])
    download.sendall(f"GET {zip_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert download.recv(64).startswith(b"HTTP/1.1 200")
    server = psutil.Process(procs[0].pid)
    # The service keeps its header readers (PACSINDEX_WORKERS=2) from its start, beside the render pool
    # (render_workers: 2), which loads numpy as it starts; before the run, the readers have not.
    spawned = wait_until(lambda: len(s := spawned_by(server)) == 4 and sum(map(draws, s)) == 2 and s)
    readers = [p for p in spawned if not draws(p)]
    idle = sum(p.cpu_times().user for p in readers)
    assert c.post("/api/index/start", headers=csrf).status_code == 202
    wait_until(lambda: c.get("/api/index/status").json()["files_processed"] >= 600, timeout=120)
    assert sum(p.cpu_times().user for p in readers) > idle  # they read the run's files
    others = server.children(recursive=True)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait(30)
    wait_until(lambda: not any(alive(p) for p in readers))  # they end with the server, not linger
    for p in others:  # anything else the server started (resource tracker, render pool): not left behind
        if alive(p):
            p.kill()
    download.close()
    c.close()

    procs.append(start_serve(db, [str(shared), str(archive)], port))
    c, csrf = signed_in(url)
    log = [e for e in c.get(f"/api/shares/{made['id']}/log").json() if e["kind"] == "zip"]
    assert [e["outcome"] for e in log] == ["incomplete"]  # the zip being sent when the server died
    assert c.post("/api/index/start", headers=csrf).status_code == 202

    def finished() -> bool:
        return c.get("/api/index/status").json()["state"] in ("completed", "failed")

    wait_until(finished, timeout=240)
    status = c.get("/api/index/status").json()
    assert status["state"] == "completed" and status["errors"] == 0
    assert status["files_unchanged"] >= 600 - 200  # what the killed run committed was not read again
    assert status["files_processed"] == status["enumerated_files"]
    c.close()
