"""SMB2 requests as bytes (`pacsindex.sources.smb.wire`): each request is byte for byte what smbprotocol's
own message classes pack, and against a real Samba server a reply altered on the way (a signed session's
file data, an encrypted session's ciphertext) is refused: the file is recorded as an error, never indexed
with what the attacker wrote."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from smbprotocol.file_info import FileAttributes, FileInformationClass
from smbprotocol.open import CreateDisposition, CreateOptions, ImpersonationLevel, Open, ShareAccess

from conftest import write_dicom
from pacsindex.ingest.progress import Progress
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for
from pacsindex.sources.smb import reader as smb
from pacsindex.sources.smb import wire
from samba_server import SambaServer, TcpProxy, samba_problem, start_samba

FILE_ID = bytes(range(16))
SHARE = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
LISTING = FileInformationClass.FILE_ID_FULL_DIRECTORY_INFORMATION


def smbprotocol_open(name: str = "") -> Open:
    """An smbprotocol Open on a stand-in share: enough for it to pack requests with send=False."""
    connection = SimpleNamespace(dialect=0x311, max_read_size=1 << 20)
    tree = SimpleNamespace(
        session=SimpleNamespace(connection=connection), share_name=r"\\nas\x", tree_connect_id=3
    )
    opened = Open(tree, name)
    opened.file_id = FILE_ID
    return opened


@pytest.mark.parametrize("name", ["", "CT", "Patients\\MÜLLER Hans\\2018\\IM0001.dcm", "中文\\図"])
@pytest.mark.parametrize(
    ("access", "options"), [(0x81, CreateOptions.FILE_DIRECTORY_FILE), (0x81, 0x40), (0x80, 0)]
)
def test_a_create_is_packed_as_smbprotocol_packs_it(name: str, access: int, options: int) -> None:
    theirs, _ = smbprotocol_open(name).create(
        ImpersonationLevel.Impersonation,
        access,
        FileAttributes.FILE_ATTRIBUTE_NORMAL,
        SHARE,
        CreateDisposition.FILE_OPEN,
        options,
        send=False,
    )
    ours = wire.create(
        name, access, FileAttributes.FILE_ATTRIBUTE_NORMAL, SHARE, CreateDisposition.FILE_OPEN, options
    )
    assert ours == (wire.CREATE, bytes(theirs.pack()), 1)


@pytest.mark.parametrize(("offset", "length", "charge"), [(0, 16384, 1), (65536, 65536, 1), (7, 1 << 20, 16)])
def test_a_read_is_packed_as_smbprotocol_packs_it(offset: int, length: int, charge: int) -> None:
    theirs = smbprotocol_open().read(offset, length, send=False)[0]
    assert wire.read(offset, length, FILE_ID) == (wire.READ, bytes(theirs.pack()), charge)


def test_a_directory_query_and_a_close_are_packed_as_smbprotocol_packs_them() -> None:
    query = smbprotocol_open().query_directory("*", LISTING, send=False)[0]
    assert wire.query_directory(LISTING, "*", FILE_ID) == (wire.QUERY_DIRECTORY, bytes(query.pack()), 1)
    close = smbprotocol_open().close(send=False)[0]
    assert wire.close(FILE_ID) == (wire.CLOSE, bytes(close.pack()), 1)
    assert wire.close()[1][-16:] == b"\xff" * 16  # related: the file the create before it opened


# -- against Samba: replies altered on the way ------------------------------------------------------------

PATIENT = b"NKOSI^THANDEKA"


class Tamperer:
    """What an attacker on the way does to what the NAS sends once the login is done: swap the patient's
    name for another of the same length (signed session), or flip a byte of every large packet (encrypted
    session: the name is not visible). Counts what it altered."""

    def __init__(self, encrypted: bool) -> None:
        self.encrypted, self.altered = encrypted, 0

    def __call__(self, data: bytes) -> bytes:
        if not self.encrypted and PATIENT in data:
            self.altered += 1
            return data.replace(PATIENT, b"MALLORY^EVILX!")
        if self.encrypted and len(data) > 4000:  # header reads; the handshake's packets are small
            self.altered += 1
            return data[:-100] + bytes([data[-100] ^ 0x01]) + data[-99:]
        return data


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Path]:
    problem = samba_problem()
    if problem:
        pytest.skip(problem)
    root = tmp_path / "archive"
    for i in range(6):
        write_dicom(
            root / "CT" / f"IM{i}.dcm",
            PatientName=PATIENT.decode(),
            PatientID="PID-NK",
            ImageComments="x" * 8000,
        )  # replies to header reads are then larger than any other the NAS sends
    smb.close_connections()
    yield root
    smb.close_connections()


@pytest.mark.samba
@pytest.mark.parametrize("mode", ["off", "desired"])
def test_a_reply_altered_on_the_way_is_refused(archive: Path, tmp_path: Path, mode: str) -> None:
    server: SambaServer = start_samba(
        tmp_path / "srv", {"archive": archive}, extra_global=[f"server smb encrypt = {mode}"]
    )
    tamper = Tamperer(encrypted=mode != "off")
    relay = TcpProxy(server.port, down=tamper)
    try:
        creds = smb.SmbCredentials(server.user, server.password)
        p: Progress = run_index(
            tmp_path / "i.db", [source_for(server.url(port=relay.port), creds)], ScanOptions(workers=1)
        )
    finally:
        relay.close()
        server.stop()
    assert tamper.altered > 0
    db = sqlite3.connect(tmp_path / "i.db")
    names = [n for (n,) in db.execute("SELECT PatientName FROM patients")]
    notes = [n for (n,) in db.execute("SELECT reason FROM files WHERE status = 'error' AND transient")]
    db.close()
    assert not any("MALLORY" in (n or "") for n in names)
    assert names == [] and len(notes) == 6 and p.errors == 6, (p, names)
    # Each file's error says why, as the admin reads it in `pacsindex problems`.
    why = "failed its signature check" if mode == "off" else "altered on the way"
    assert all(why in note for note in notes), notes


@pytest.mark.samba
def test_a_reply_in_clear_to_an_encrypted_request_is_refused(archive: Path, tmp_path: Path) -> None:
    """On an encrypted session an attacker on the way cannot read the traffic, but could write a reply in
    clear (say "access denied", or file data of his own) for a request he guesses the message id of."""
    server: SambaServer = start_samba(tmp_path / "srv", {"archive": archive})
    try:
        loc = smb.SmbLocation.parse(server.url())
        client = smb._client_for(loc, smb.SmbCredentials(server.user, server.password), 10.0)
        assert client.encrypted and client.wire is not None and client.session is not None
        [pending] = client.wire.request(client.session, client.tree(loc.share), [wire.close(FILE_ID)])
        assert pending.sealed
        pending.wait(10)  # the NAS's own (encrypted) answer: a close of a file that is not open
        forged_mid = 10**9
        client.wire.pending[forged_mid] = forged = wire.Reply(client.session, sealed=True)
        denied = 0xC0000022
        header = wire._HEADER.pack(
            b"\xfeSMB",
            64,
            0,
            denied,
            wire.CREATE,
            1,
            0x1,
            0,
            forged_mid,
            0,
            0,
            client.session.session_id,
            b"",
        )
        with pytest.raises(wire.WireError, match="not encrypted"):
            client.wire._deliver(header + bytes(9), encrypted=False)
        assert forged.status == 0  # never delivered as the NAS's answer
    finally:
        smb.close_connections()
        server.stop()
