"""Backups: `pacsindex backup DEST` and `pacsindex restore SRC`.

What a practice must back up is what cannot be rebuilt: the index database (staff accounts, the audit log,
API tokens, sends to Orthanc, and the index itself), the share store (who was sent which link, and who
used it) and the saved settings (NAS, Orthanc, schedule: JSON files with passwords). The index's patients,
studies and series can be rebuilt by indexing the archive again, but the rest of that file cannot, so the
whole file is copied.

Both databases are copied with SQLite's online backup API in one step: a consistent snapshot even while
the web service runs and an indexing run writes (WAL lets the copy read while the run commits), never a
file copy that could catch half a transaction. Each copy is checked (`PRAGMA integrity_check`) and its
schema version and counts are written to `manifest.json`.

Restoring checks the backup the same way, refuses one made by a newer pacsindex, and refuses while the
web service or an indexing run uses the index (`ServiceLock`, `WriterLock`): stop the service first.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from pacsindex import __version__
from pacsindex.config.settings import Settings
from pacsindex.errors import BackupError, Conflict, StoreError
from pacsindex.index import schema, store
from pacsindex.index.locking import WriterLock
from pacsindex.share import store as share_store

__all__ = ["MANIFEST", "ServiceLock", "backup", "restore"]

MANIFEST = "manifest.json"
INDEX_FILE = "pacsindex.db"
SHARES_FILE = "shares.db"
SETTINGS_DIR = "settings"
COUNTED = ("patients", "studies", "series", "files", "users", "audit", "orthanc_sends")


class ServiceLock:
    """Held by `pacsindex serve` while it runs, so a restore cannot pull the index from under it."""

    def __init__(self, data_dir: Path) -> None:
        self._lock = WriterLock(Path(data_dir) / "service")

    @property
    def path(self) -> Path:
        return self._lock.path

    def __enter__(self) -> ServiceLock:
        try:
            self._lock.__enter__()
        except Conflict as exc:
            raise Conflict(
                "the web service (pacsindex serve) is running on this data directory: stop it first"
            ) from exc
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.__exit__(exc_type, exc, tb)


def _copy_db(src: Path, dst: Path, *, single_file: bool = False) -> None:
    """SQLite online backup of `src` into `dst` (replaced), in one step: one consistent snapshot.
    `single_file`: the copy leaves WAL mode, so it is one self-contained file."""
    try:
        source = sqlite3.connect(src, timeout=30)
        try:
            target = sqlite3.connect(dst, timeout=30)
            try:
                source.backup(target, pages=-1)
                if single_file:
                    target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot copy {src} to {dst}: {exc}") from exc


def _check(path: Path, newest: int, what: str) -> dict[str, Any]:
    """Integrity, schema version and counts of a database file; BackupError when it is not usable."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            counts = {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # names from COUNTED only
                for t in (*COUNTED, "shares", "access_log")
                if t in tables
            }
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the {what} in {path} is not a usable database: {exc}") from exc
    if ok != "ok":
        raise BackupError(f"the {what} in {path} is damaged: {ok}")
    if version > newest:
        raise BackupError(
            f"the {what} in {path} was written by a newer pacsindex (schema {version}, this one knows "
            f"{newest}): install that version to restore it"
        )
    return {"schema": version, "counts": counts}


def _saved_files(settings: Settings) -> list[Path]:
    skip = {settings.status_path.resolve()}
    data = settings.data_path
    return (
        sorted(p for p in data.glob("*.json") if p.is_file() and p.resolve() not in skip)
        if data.is_dir()
        else []
    )


def backup(settings: Settings, dest: Path) -> dict[str, Any]:
    """Write a backup into the folder `dest` (new or empty); its manifest."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: give a new folder for each backup")
    if not Path(settings.db).exists():
        raise BackupError(f"there is no index at {settings.db} to back up")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        os.chmod(dest, 0o700)  # the copies hold patient data and saved passwords
    except OSError as exc:
        raise BackupError(f"cannot create {dest}: {exc.strerror or exc}") from exc
    manifest: dict[str, Any] = {
        "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pacsindex": __version__,
        "source": str(settings.db),
    }
    _copy_db(Path(settings.db), dest / INDEX_FILE, single_file=True)
    manifest["index"] = {"file": INDEX_FILE, **_check(dest / INDEX_FILE, len(schema.MIGRATIONS), "index")}
    if Path(settings.shares_path).exists():
        _copy_db(Path(settings.shares_path), dest / SHARES_FILE, single_file=True)
        manifest["shares"] = {
            "file": SHARES_FILE,
            **_check(dest / SHARES_FILE, len(share_store.MIGRATIONS), "share store"),
        }
    names = []
    for path in _saved_files(settings):
        (dest / SETTINGS_DIR).mkdir(exist_ok=True)
        target = dest / SETTINGS_DIR / path.name
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)
        names.append(path.name)
    manifest["settings"] = names
    for f in dest.glob("*.db"):
        os.chmod(f, 0o600)
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def restore(settings: Settings, src: Path) -> dict[str, Any]:
    """Check the backup in `src`, then put it in place of the index, share store and saved settings."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} holds no pacsindex backup ({MANIFEST} missing or damaged)") from exc
    checked = {"index": _check(src / INDEX_FILE, len(schema.MIGRATIONS), "index")}
    if "shares" in manifest:
        checked["shares"] = _check(src / SHARES_FILE, len(share_store.MIGRATIONS), "share store")
    for kind, found in checked.items():
        if found["counts"] != manifest[kind]["counts"]:
            raise BackupError(f"the {kind} in {src} does not match its manifest: it changed after the backup")
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    Path(settings.db).parent.mkdir(parents=True, exist_ok=True)
    with ServiceLock(data), WriterLock(settings.db):
        _copy_db(src / INDEX_FILE, Path(settings.db))
        store.connect(settings.db).close()  # migrate a backup from an older version
        if "shares" in checked:
            _copy_db(src / SHARES_FILE, Path(settings.shares_path))
            share_store.connect(settings.shares_path).close()
        for name in manifest.get("settings", []):
            source = src / SETTINGS_DIR / Path(name).name
            if source.is_file():
                target = data / Path(name).name
                shutil.copyfile(source, target)
                os.chmod(target, 0o600)
    return {**manifest, "restored_to": str(settings.db)}
