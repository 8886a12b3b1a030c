"""Send to Orthanc against a real Orthanc (Debian's, started by the test on free ports): every instance of a
series lands and a second send adds nothing; a damaged or missing file is reported on its own while the rest
land; a wrong password, a closed port and a server that is not Orthanc each get a clear message; the
`pacsindex send-to-orthanc` command does the same and writes the audit log."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli
from orthanc_server import OrthancServer, orthanc_fixture  # noqa: F401 - the `orthanc` fixture
from pacsindex.errors import ConfigError, OrthancAuthFailed, OrthancError, OrthancUnreachable
from pacsindex.orthanc import client as sending
from pacsindex.orthanc.client import Connection, OrthancClient, SendProgress, send_series
from support_orthanc import closed_port, index, make_series, series_key, sop_uids

pytestmark = pytest.mark.orthanc


def connection(server: OrthancServer, **changes: str) -> Connection:
    values = {"url": server.url, "user": server.user, "password": server.password, **changes}
    return Connection(values["url"], values["user"], values["password"])


def test_every_instance_lands_and_a_second_send_adds_nothing(orthanc: OrthancServer, tmp_path: Path) -> None:
    orthanc.clear()
    root, db = tmp_path / "archive", tmp_path / "pacsindex.db"
    make_series(root, "1.2.826.99.1.1", 12)
    make_series(root, "1.2.826.99.1.2", 3)  # another series in the index: must not be sent
    index(db, root)
    key = series_key(db, "1.2.826.99.1.1")
    events: list[SendProgress] = []

    with OrthancClient(connection(orthanc)) as client:
        first = send_series(db, key, client, on_progress=events.append)
    assert (first.total, first.sent, first.skipped, first.failed) == (12, 12, 0, 0)
    assert orthanc.instance_uids() == sop_uids(db, key)  # every instance, and only this series'
    assert len(orthanc.get("/instances")) == 12
    assert [e.done for e in events] == list(range(13))  # progress after every file, from 0 to 12

    with OrthancClient(connection(orthanc)) as client:
        second = send_series(db, key, client)
    assert (second.total, second.sent, second.skipped, second.failed) == (12, 0, 12, 0)
    assert len(orthanc.get("/instances")) == 12


def test_a_damaged_and_a_missing_file_are_reported_and_the_rest_land(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    orthanc.clear()
    root, db = tmp_path / "archive", tmp_path / "pacsindex.db"
    folder = make_series(root, "1.2.826.99.2.1", 6)
    index(db, root)
    key = series_key(db, "1.2.826.99.2.1")
    (folder / "IM002.dcm").write_bytes(b"this file was overwritten after indexing, it is not DICOM")
    (folder / "IM004.dcm").unlink()

    with OrthancClient(connection(orthanc)) as client:
        result = send_series(db, key, client)
    assert (result.total, result.sent, result.skipped, result.failed) == (6, 4, 0, 2)
    reasons = {Path(f.path).name: f.reason for f in result.failures}
    assert set(reasons) == {"IM002.dcm", "IM004.dcm"}
    assert "Orthanc refused it" in reasons["IM002.dcm"] and "Bad file format" in reasons["IM002.dcm"]
    assert "not found" in reasons["IM004.dcm"]
    assert {f.InstanceNumber for f in result.failures} == {3, 5}
    assert len(orthanc.get("/instances")) == 4


def test_test_connection_names_the_orthanc(orthanc: OrthancServer) -> None:
    with OrthancClient(connection(orthanc)) as client:
        info = client.test_connection()
    assert info["version"] == orthanc.get("/system")["Version"] and info["name"] == "PACSINDEX-TEST"


def test_a_wrong_password_says_to_check_the_user_and_password(orthanc: OrthancServer) -> None:
    with OrthancClient(connection(orthanc, password="not-the-password")) as client:
        with pytest.raises(OrthancAuthFailed, match="refused the user name or password"):
            client.test_connection()


def test_a_closed_port_says_orthanc_cannot_be_reached() -> None:
    with OrthancClient(Connection(f"http://127.0.0.1:{closed_port()}", "u", "p")) as client:
        with pytest.raises(OrthancUnreachable, match="cannot be reached.*check the address and port"):
            client.test_connection()


def test_a_server_that_never_answers_gives_up_with_a_clear_message() -> None:
    # Accepts the connection (the listen backlog does), never reads or answers: a hung Orthanc.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        conn = Connection(f"http://127.0.0.1:{port}", "u", "p")
        with OrthancClient(conn, answer_timeout_s=1) as client:
            with pytest.raises(OrthancUnreachable, match="did not answer in time"):
                client.test_connection()


def test_an_address_that_is_not_orthanc_says_so(orthanc: OrthancServer) -> None:
    with OrthancClient(connection(orthanc, url=orthanc.url + "/app")) as client:
        with pytest.raises(OrthancError, match="not an Orthanc REST API"):
            client.test_connection()


def test_saved_settings_keep_the_password_and_never_show_it(tmp_path: Path) -> None:
    sending.save_connection(tmp_path, url="http://pacs:8042/", user="pacs", password="s3cret-pass")
    kept = sending.save_connection(tmp_path, url="http://pacs.local:8042", user="pacs2")
    assert kept == Connection("http://pacs.local:8042", "pacs2", "s3cret-pass")
    assert kept.public() == {"url": "http://pacs.local:8042", "user": "pacs2", "password_set": True}
    assert "s3cret" not in repr(kept)
    cleared = sending.save_connection(tmp_path, url="http://pacs.local:8042", user="x", clear_password=True)
    assert cleared.password == "" and cleared.public()["password_set"] is False
    with pytest.raises(ConfigError, match="must look like http://"):
        sending.save_connection(tmp_path, url="pacs:8042", user="x")
    with pytest.raises(ConfigError, match="not set up"):
        sending.connection_for(tmp_path / "empty", env={})
    env = {sending.PASSWORD_ENV: "from-env"}
    assert sending.connection_for(tmp_path, env=env).password == "from-env"


def test_the_command_sends_with_progress_summary_and_audit(orthanc: OrthancServer, tmp_path: Path) -> None:
    orthanc.clear()
    root, db = tmp_path / "archive", tmp_path / "pacsindex.db"
    make_series(root, "1.2.826.99.3.1", 5)
    run_cli("index", str(root), "--db", str(db), "--workers", "1", "--no-progress")
    key = series_key(db, "1.2.826.99.3.1")
    env = {sending.PASSWORD_ENV: orthanc.password}
    args = ("send-to-orthanc", key, "--db", str(db), "--url", orthanc.url, "--user", orthanc.user)

    first = run_cli(*args, "--json", env=env)
    assert json.loads(first.stdout)["sent"] == 5
    assert "5 sent, 0 already there, 0 failed, of 5 files" in first.stderr
    assert orthanc.instance_uids() == sop_uids(db, key)
    second = run_cli(*args, env=env)
    assert "0 sent, 5 already there, 0 failed, of 5 files" in second.stderr
    assert len(orthanc.get("/instances")) == 5

    refused = run_cli(*args, env={sending.PASSWORD_ENV: "wrong-password"}, check=False)
    assert refused.returncode == 10
    assert "refused the user name or password" in refused.stderr and "Traceback" not in refused.stderr
    unknown = run_cli(*args[:1], "0" * 40, *args[2:], env=env, check=False)
    assert unknown.returncode == 6 and "no series with that SeriesKey" in unknown.stderr

    conn = sqlite3.connect(db)
    sql = "SELECT user_name, detail FROM audit WHERE action = 'orthanc_send' ORDER BY id"
    rows = conn.execute(sql).fetchall()
    conn.close()
    details = [json.loads(d) for _u, d in rows]
    assert all(u.startswith("cli:") for u, _d in rows)
    assert [d.get("state") for d in details] == [None, "completed", None, "completed", None, "failed"]
    assert details[1]["sent"] == 5 and details[3]["skipped"] == 5
    assert all(d["SeriesKey"] == key for d in details)
    assert "NKOSI" not in json.dumps(details)  # counts and keys, no patient names
