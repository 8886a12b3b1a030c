"""SMB sources against a real Samba server: the same index as a local run of the same tree, errors that say
what to do within the time limit, dropped connections retried, a NAS gone for good stopping the run (and the
next run resuming), the CLI with credentials from the environment. Plus the smb:// address rules, and the
file lists Windows admins export with tools/Export-NasFileList.ps1 when SMB from here is not an option."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli, write_dicom
from pacsindex.errors import (
    AuthenticationFailed,
    ConfigError,
    PermissionDenied,
    ShareNotFound,
    SourceError,
    SourceUnreachable,
)
from pacsindex.index import store
from pacsindex.ingest.progress import Progress
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree, read_list_lines, reader_for, source_for
from pacsindex.sources.smb import reader as smb
from samba_server import (
    PASSWORD,
    SambaServer,
    SilentServer,
    TcpProxy,
    free_port,
    samba_fixture,  # noqa: F401  (the "samba" fixture)
)
from support_wait import wait_until

DATA = Path(__file__).resolve().parents[1] / "data"
LIMIT_S = 30.0  # an attempt to reach the NAS gives up within this


@pytest.fixture(autouse=True)
def fresh_connections() -> Any:
    """Each test connects anew (the pool is per process and would outlive a test's proxy)."""
    smb.close_connections()
    yield
    smb.close_connections()


def creds(server: SambaServer, password: str | None = None) -> smb.SmbCredentials:
    return smb.SmbCredentials(server.user, password or server.password)


def archive_dir(server: SambaServer, name: str) -> Path:
    folder = server.shares["archive"] / name
    folder.mkdir(parents=True)
    return folder


def snapshot(db: Path, prefix: str) -> dict[str, Any]:
    """Everything a user sees in an index, with the root prefix cut from every path."""

    def rel(path: str) -> str:
        assert path.startswith(prefix), path
        return path[len(prefix) :]

    with store.reading(db) as conn:
        series, files = {}, {}
        for row in store.list_series(conn):
            detail = store.get_series(conn, row["SeriesKey"])
            assert detail is not None
            series_id = detail.pop("series_id")
            series[row["SeriesKey"]] = detail
            files[row["SeriesKey"]] = [
                {**f, "path": rel(f["path"]), "mtime_ns": None} for f in store.series_files(conn, series_id)
            ]
        problems = sorted((rel(p["path"]), p["reason"]) for p in store.problems(conn))
        non_dicom = sorted((rel(p["path"]), p["reason"]) for p in store.problems(conn, kind="non_dicom"))
    return {"series": series, "files": files, "problems": problems, "non_dicom": non_dicom}


def counts(p: Progress) -> tuple[int, ...]:
    return (p.files_processed, p.files_read, p.errors, p.non_dicom, p.series_count, p.files_removed)


@pytest.mark.samba
def test_smb_index_equals_local_index_of_the_same_tree(samba: SambaServer, tmp_path: Path) -> None:
    root = archive_dir(samba, "same")
    write_sample(root / "sample", patients=5, files=240, seed=3)
    traps = root / "traps"
    write_dicom(traps / "big" / "B.dcm", private_blob=3 << 20, SeriesInstanceUID="7.1")  # past the prefix
    write_dicom(traps / "raw" / "OLD0001", preamble=False, SeriesInstanceUID="7.2")
    write_dicom(traps / "impl" / "I.dcm", implicit=True, SeriesInstanceUID="7.3")
    # Its own study: a study UID shared by two patients goes to whichever is written first (see README).
    write_dicom(
        traps / "Müller Hans" / "IM1.dcm",
        PatientName="MÜLLER^HANS",
        charset="ISO_IR 100",
        StudyInstanceUID="7.4.0",
        SeriesInstanceUID="7.4",
    )
    (traps / "zero.dcm").write_bytes(b"")
    (traps / "cut.dcm").write_bytes((traps / "impl" / "I.dcm").read_bytes()[:300])
    (traps / "notes.txt").write_text("not DICOM\n")

    local = run_index(tmp_path / "local.db", [LocalTree(str(root))], ScanOptions(workers=2))
    remote = run_index(
        tmp_path / "smb.db", [source_for(samba.url("archive", "same"), creds(samba))], ScanOptions(workers=2)
    )

    assert remote.state == local.state == "completed"
    assert counts(remote) == counts(local)
    assert local.files_processed > 247 and local.series_count > 10
    want = snapshot(tmp_path / "local.db", str(root))
    got = snapshot(tmp_path / "smb.db", samba.url("archive", "same"))
    assert got["series"] == want["series"]  # same SeriesKeys, fields and file counts
    assert got["files"] == want["files"]  # same files per series, same paths below the root
    assert got["problems"] == want["problems"] and len(want["problems"]) == 2
    assert got["non_dicom"] == want["non_dicom"]


@pytest.mark.samba
def test_reads_only_the_header_not_whole_files(samba: SambaServer, tmp_path: Path) -> None:
    root = archive_dir(samba, "big")
    for i in range(4):  # 3 MiB of private data before the patient module, 4 MiB of pixels after it
        ds_path = write_dicom(
            root / f"IM{i}.dcm",
            private_blob=3 * 1024 * 1024,
            rows=1448,
            SeriesInstanceUID="8.1",
            InstanceNumber=i,
        )
        assert ds_path.stat().st_size > 7_000_000
    proxy = TcpProxy(samba.port)
    tree = source_for(samba.url("archive", "big", port=proxy.port), creds(samba))
    try:
        p = run_index(tmp_path / "i.db", [tree], ScanOptions(workers=1))
    finally:
        proxy.close()
    assert p.state == "completed" and p.series_count == 1 and p.errors == 0
    assert proxy.bytes_down < 4 * 200_000, f"{proxy.bytes_down} bytes came back for 4 headers"

    url = samba.url("archive", "big") + "/IM0.dcm"
    with reader_for(url, creds(samba)).open(url) as fh:  # a share's zip stream reads whole files like this
        whole = b"".join(iter(lambda: fh.read(1 << 20), b""))
    assert whole == (root / "IM0.dcm").read_bytes()


@pytest.mark.samba
@pytest.mark.parametrize(
    "case", ["wrong password", "unknown share", "locked share", "closed port", "silent server"]
)
def test_connection_errors_say_what_to_do_within_the_limit(samba: SambaServer, case: str) -> None:
    silent = SilentServer()
    url, who = samba.url("archive"), creds(samba)
    expected: tuple[type[SourceError], str]
    if case == "wrong password":
        who, expected = creds(samba, "not-the-password"), (AuthenticationFailed, "PACSINDEX_SMB_PASSWORD")
    elif case == "unknown share":
        url, expected = samba.url("Image Archiving"), (ShareNotFound, "no share named 'Image Archiving'")
    elif case == "locked share":
        url, expected = samba.url("locked"), (PermissionDenied, "ask the NAS administrator")
    elif case == "closed port":
        url, expected = samba.url("archive", port=free_port()), (SourceUnreachable, "connection refused")
    else:
        url, expected = samba.url("archive", port=silent.port), (SourceUnreachable, "timed out")
    started = time.monotonic()
    try:
        with pytest.raises(expected[0]) as caught:
            source_for(url, who).check()  # what every run does first
    finally:
        silent.close()
    elapsed = time.monotonic() - started
    assert elapsed < LIMIT_S
    message = str(caught.value)
    assert expected[1] in message
    if case == "unknown share":  # there is no share to map
        assert "net use" not in message
    else:
        assert 'net use Z: "\\\\127.0.0.1\\' in message and 'pacsindex index "Z:\\' in message  # way round
    assert PASSWORD not in message and "not-the-password" not in message


@pytest.mark.samba
def test_test_connection_lists_the_share_root(samba: SambaServer) -> None:
    archive_dir(samba, "listed")
    nas = {
        "host": "127.0.0.1",
        "port": samba.port,
        "share": "archive",
        "user": samba.user,
        "password": samba.password,
    }
    assert "listed/" in smb.test_connection(nas)
    assert "listed/" in smb.test_connection(samba.url("archive"), creds(samba))
    with pytest.raises(AuthenticationFailed):
        smb.test_connection({**nas, "password": "nope"})


@pytest.mark.samba
def test_dropped_connections_are_retried_and_the_run_finishes(
    samba: SambaServer, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    root = archive_dir(samba, "drop")
    write_sample(root, patients=6, files=600, seed=5)
    proxy = TcpProxy(samba.port)
    cuts: list[int] = []

    def on_progress(p: Progress) -> None:
        if p.files_processed >= 150 and not cuts:
            cuts.append(proxy.cut())  # every connection, the lister's and the worker processes', at once

    tree = source_for(samba.url("archive", "drop", port=proxy.port), creds(samba))
    try:
        p = run_index(tmp_path / "i.db", [tree], ScanOptions(workers=2, progress_files=10), on_progress)
    finally:
        proxy.close()
    assert cuts and cuts[0] > 0
    assert proxy.connections > 3  # the main process and both workers connected again
    assert "retry 1 of 3" in capfd.readouterr().err + caplog.text  # (workers log to stderr)
    local = run_index(tmp_path / "local.db", [LocalTree(str(root))], ScanOptions(workers=1))
    assert p.state == "completed" and p.errors == 0
    assert counts(p) == counts(local)


@pytest.mark.samba
def test_network_errors_are_retried_three_times_with_growing_jittered_pauses(samba: SambaServer) -> None:
    attempts: list[Any] = []
    pauses: list[float] = []

    def always_dropped(client: Any) -> None:
        attempts.append(client)
        raise smb._Offline("connection lost (test)")

    with pytest.raises(smb._Offline):
        smb._retrying(
            smb.SmbLocation.parse(samba.url("archive")),
            creds(samba),
            10.0,
            always_dropped,
            wait=pauses.append,
        )
    assert len(attempts) == 4 and len({id(c) for c in attempts}) == 4  # each retry on a new connection
    for n, pause in enumerate(pauses):
        base = smb.BACKOFF_S * 2**n
        assert 0.5 * base <= pause <= 1.5 * base


@pytest.mark.samba
def test_nas_gone_for_good_stops_the_run_and_the_next_run_resumes(samba: SambaServer, tmp_path: Path) -> None:
    root = archive_dir(samba, "gone")
    write_sample(root, patients=6, files=600, seed=6)
    proxy = TcpProxy(samba.port)
    url = samba.url("archive", "gone", port=proxy.port)
    db = tmp_path / "i.db"

    def on_progress(p: Progress) -> None:
        if p.files_processed >= 150:
            proxy.close()  # no more connections at all

    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match="connection refused"):
        run_index(
            db,
            [source_for(url, creds(samba))],
            ScanOptions(workers=2, progress_files=10, commit_files=50),
            on_progress,
        )
    assert time.monotonic() - started < LIMIT_S + 30
    conn = sqlite3.connect(db)
    status, message = conn.execute("SELECT status, message FROM runs ORDER BY id DESC").fetchone()
    conn.close()
    assert status == "failed" and "NAS" in message
    with store.reading(db) as c:
        kept = sum(s["file_count"] for s in store.list_series(c))
    assert 0 < kept < 600

    back = TcpProxy(samba.port, port=proxy.port)  # the NAS is back, at the same address
    try:
        p = run_index(db, [source_for(url, creds(samba))], ScanOptions(workers=2))
    finally:
        back.close()
    assert p.state == "completed" and p.errors == 0
    assert p.files_unchanged >= kept and p.files_read + p.files_unchanged == p.files_processed
    with store.reading(db) as c:
        assert sum(s["file_count"] for s in store.list_series(c)) == 600


@pytest.mark.samba
def test_slow_link_earns_a_hint_to_mount_the_share(samba: SambaServer, tmp_path: Path) -> None:
    root = archive_dir(samba, "slow")
    for i in range(12):
        (root / f"F{i}").mkdir()
    proxy = TcpProxy(samba.port, delay_s=0.015)
    events: list[Progress] = []
    try:
        tree = source_for(samba.url("archive", "slow", port=proxy.port), creds(samba))
        assert isinstance(tree, smb.SmbTree)
        run_index(tmp_path / "slow.db", [tree], ScanOptions(workers=1, progress_seconds=0), events.append)
    finally:
        proxy.close()
    assert tree.hint is not None and "net use Z:" in tree.hint
    assert any(e.running and e.message and "net use Z:" in e.message for e in events), "the status says so"


@pytest.mark.samba
def test_cli_indexes_an_smb_url_with_env_credentials(samba: SambaServer, tmp_path: Path) -> None:
    root = archive_dir(samba, "cli")
    write_sample(root, patients=5, files=60, seed=7)
    url = samba.url("archive", "cli")
    env = {**samba.env, "PACSINDEX_DB": str(tmp_path / "i.db")}
    proc = run_cli("index", url, "--json", "--workers", "2", "-v", env=env)
    summary = json.loads(proc.stdout)
    assert summary["state"] == "completed" and summary["files_processed"] >= 60
    assert summary["roots"] == [url]
    assert PASSWORD not in proc.stdout + proc.stderr
    assert "MÜLLER" not in proc.stderr and "IMG0" not in proc.stderr  # no patient data in INFO logs
    found = json.loads(run_cli("search", "müller", "--json", env=env).stdout)
    assert found and found[0]["PatientName"] == "MÜLLER^HANS"

    bad = run_cli("index", url, env={**env, "PACSINDEX_SMB_PASSWORD": "wrong"}, check=False)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1].startswith("pacsindex: error: the NAS at 127.0.0.1")
    assert "Traceback" not in bad.stderr


# -- no server needed ------------------------------------------------------------------------------------


def test_smb_address_rules() -> None:
    loc = smb.SmbLocation.parse("smb://NAS.local:4455/Image Archiving/2019/03/")
    assert (loc.host, loc.port, loc.share, loc.path) == ("nas.local", 4455, "Image Archiving", "2019/03")
    assert loc.url == "smb://nas.local:4455/Image Archiving/2019/03"
    assert smb.SmbLocation.parse("smb://nas/share").url == "smb://nas/share"  # port 445 is left out
    assert loc.name_of(loc.url + "/P1/IM1.dcm") == "2019\\03\\P1\\IM1.dcm"
    assert smb.url_for("NAS", "Image Archiving", "\\2019\\03", 445) == "smb://nas/Image Archiving/2019/03"
    with pytest.raises(ConfigError) as caught:
        smb.SmbLocation.parse("smb://reader:s3cret@nas/share")
    assert "s3cret" not in str(caught.value) and "PACSINDEX_SMB_USER" in str(caught.value)
    with pytest.raises(ConfigError):
        smb.SmbLocation.parse("smb://nas")
    assert "s3cret" not in repr(smb.SmbCredentials("reader", "s3cret"))


def test_credentials_come_from_settings_or_the_environment(tmp_path: Path) -> None:
    from pacsindex.config import settings as config

    settings = config.load(
        environ={
            "PACSINDEX_SMB_USER": "reader",
            "PACSINDEX_SMB_PASSWORD": "pw",
            "PACSINDEX_SMB_DOMAIN": "CLINIC",
            "PACSINDEX_SMB_CONNECT_TIMEOUT": "5",
        }
    )
    assert smb.SmbCredentials.from_settings(settings) == smb.SmbCredentials("reader", "pw", "CLINIC")
    assert smb.SmbCredentials.from_settings(settings).login == "CLINIC\\reader"
    assert "pw" not in repr(settings).replace("pwd", "")
    tree = smb.SmbTree.from_url("smb://nas/share/x", settings)
    assert tree.timeout == 5 and tree.label == "smb://nas/share/x"
    conf = tmp_path / "pacsindex.toml"
    conf.write_text('smb_password = "pw"\n')
    with pytest.raises(ConfigError, match="PACSINDEX_SMB_PASSWORD"):
        config.load(conf, environ={})


def test_pacer_grows_while_throughput_grows_and_halves_on_timeouts() -> None:
    pacer = smb._Pacer()
    start = pacer.window
    pacer.record(100, 1.0)
    pacer.record(100, 0.5)
    assert pacer.window == start * 4
    pacer.record(100, 0.5)  # no better: hold
    assert pacer.window == start * 4
    pacer.timed_out()
    assert pacer.window == start * 2


# -- Windows tooling: lists written by tools/Export-NasFileList.ps1 ---------------------------------------


EXPORTED = [
    "\\\\nas\\Image Archiving\\2019\\03\\PID-1_MÜLLER\\20190316_ACC1\\1_CT_AXIAL\\IMG00001.dcm",
    "\\\\nas\\Image Archiving\\2019\\03\\PID-1_MÜLLER\\20190316_ACC1\\1_CT_AXIAL\\IM00002",
    "\\\\nas\\Image Archiving\\2019\\04\\PID-2_ИВАНОВ\\20190401_ACC2\\2_MR_T2 AX\\IMG00001.dcm",
]


@pytest.mark.parametrize(
    "name", ["export-script-utf8.txt", "robocopy-unilog-utf16.txt", "getchilditem-redirect-utf16.txt"]
)
def test_exported_file_lists_parse(name: str) -> None:
    """The script's UTF-8 output (either mode), and the raw outputs of the tools it runs, as they are."""
    assert list(read_list_lines(str(DATA / name))) == EXPORTED


def test_export_script_is_there_for_windows_admins() -> None:
    script = (Path(__file__).resolve().parents[2] / "tools" / "Export-NasFileList.ps1").read_text("utf-8")
    assert "Get-ChildItem" in script and "robocopy" in script and "/UNILOG" in script
    assert os.path.getsize(DATA / "robocopy-unilog-utf16.txt") > 0


def test_a_hanging_nas_address_does_not_stall_reads_from_the_real_one(samba: SambaServer) -> None:
    """An admin's Test connection to an address that never answers (up to 30 s) goes on in one thread while
    another reads a file from the NAS that works: the read is done while the test is still hanging."""
    root = archive_dir(samba, "nostall")
    write_dicom(root / "IM0.dcm")
    silent = SilentServer()
    outcome: list[BaseException] = []

    def hang() -> None:
        try:
            smb.test_connection(samba.url("archive", port=silent.port), creds(samba), timeout=25)
        except BaseException as exc:  # noqa: BLE001 - the thread's outcome is checked below
            outcome.append(exc)

    hanging = threading.Thread(target=hang, daemon=True)
    hanging.start()
    try:
        wait_until(lambda: silent._held, what="the hanging connection to be accepted")
        url = samba.url("archive", "nostall") + "/IM0.dcm"
        with reader_for(url, creds(samba)).open(url) as fh:
            assert fh.read() == (root / "IM0.dcm").read_bytes()
        assert hanging.is_alive(), "the read finished only after the hanging attempt gave up"
    finally:
        silent.close()  # the hanging attempt now fails at once
        hanging.join(LIMIT_S)
    assert len(outcome) == 1 and isinstance(outcome[0], SourceError)
