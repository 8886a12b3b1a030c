"""A Firebird catalog: image files (JPEG 2000, mostly) whose patient, study and series data live in a
Firebird database instead of a DICOM header.

    pacsindex index --catalog firebird://USER@HOST[:PORT]/DATABASE --mapping mapping.toml

The URL names the server (port 3050 by default), the Firebird user and the database as the server knows
it: an alias from its databases.conf (`/catalog`), a path with folders, which is absolute on the server
(`/var/lib/pacs/catalog.fdb` or `//var/lib/pacs/catalog.fdb`), or a Windows path (`/C:/PACS/CATALOG.FDB`);
spaces as %20. The password is never in the URL or the mapping (both end up in shell history, logs and
backups): it comes from PACSINDEX_CATALOG_PASSWORD, or from the environment variable the mapping names in
`password_env` (see `catalog_password`).

The URL and mapping.toml are parsed and checked in mapping.py, which shows a whole mapping.

Column names match case-insensitively (Firebird upper-cases unquoted names). The query runs in a read-only
read-committed transaction, so pacsindex can never change the catalog and does not hold back the live
PACS database's garbage collection; anything but a SELECT is refused. Rows stream with fetchmany, so a
catalog of millions of images never sits in memory. A value that cannot be converted is data, not a
crash: the row comes with the field empty and a reason in `problems`.

Driver errors are translated where they enter: no route, refused or dropped connection → SourceUnreachable;
wrong user or password → AuthenticationFailed; not allowed to open the database or read a table →
PermissionDenied; a bad URL, mapping or query → ConfigError.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pacsindex.dicom.headers import HeaderRecord
from pacsindex.errors import (
    AuthenticationFailed,
    ConfigError,
    PermissionDenied,
    SourceError,
    SourceUnreachable,
)
from pacsindex.sources.catalog.mapping import (
    PASSWORD_ENV,
    CatalogMapping,
    CatalogUrl,
    catalog_password,
    load_mapping,
    parse_catalog_url,
    resolve_path,
)

log = logging.getLogger(__name__)

_RECORD_FIELDS = frozenset(f.name for f in fields(HeaderRecord))
_INT_VRS = frozenset({"IS", "SS", "US", "SL", "UL", "SV", "UV"})

# Firebird status codes (gds codes) that say what went wrong, from Firebird's own error table.
_LOGIN = {335544472}  # isc_login: user name and password are not defined
# Network (isc_network_error, net_connect_err, net_connect_listen_err, net_read_err, net_write_err,
# lost_db_connection, att_shutdown), the database shut down or unavailable, or its file not openable
# (isc_shutdown, isc_unavailable, isc_io_error).
_UNREACHABLE = {335544721, 335544722, 335544723, 335544726, 335544727, 335544741, 335544856}
_UNREACHABLE |= {335544528, 335544375, 335544344}
_DENIED = {335544831, 335544352}  # isc_conf_access_denied (DatabaseAccess), isc_no_priv (table rights)
_NOT_A_DATABASE = {335544323}  # isc_bad_db_format


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One image file the catalog lists: its path and its DICOM fields (keyword → str, int or None).

    `path` is "" when the row's path column is empty; `problems` says why, and what else did not convert."""

    path: str
    fields: Mapping[str, str | int | None]
    problems: tuple[str, ...] = ()

    def record(self) -> HeaderRecord:
        """The fields HeaderRecord keeps, as one (others, like InstitutionAddress, stay in `fields`)."""
        kept: dict[str, Any] = {k: v for k, v in self.fields.items() if k in _RECORD_FIELDS}
        return HeaderRecord(**kept)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    return text or None


def _date_text(text: str, date_format: str | None) -> str:
    if date_format:
        return datetime.strptime(text, date_format).strftime("%Y%m%d")
    digits = re.sub(r"[-/.]", "", text)
    if not re.fullmatch(r"[0-9]{8}", digits):
        raise ValueError(text)
    datetime.strptime(digits, "%Y%m%d")  # a real date, or ValueError
    return digits


def _convert(value: Any, vr: str, date_format: str | None) -> str | int | None:
    """One catalog value as the DICOM field of this VR holds it; ValueError if it cannot be."""
    if value is None:
        return None
    if vr == "DA":
        if isinstance(value, (datetime, date)):
            return value.strftime("%Y%m%d")
        text = _text(value)
        return _date_text(text, date_format) if text else None
    if vr == "TM":
        if isinstance(value, (datetime, time)):
            return value.strftime("%H%M%S")
        text = _text(value)
        return text.replace(":", "") if text else None
    if vr == "DT":
        if isinstance(value, datetime):
            return value.strftime("%Y%m%d%H%M%S")
        return _text(value)
    if vr in _INT_VRS:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int):
            return value
        if isinstance(value, (float, Decimal)):
            if value != int(value):
                raise ValueError(value)
            return int(value)
        text = _text(value)
        return int(text) if text else None
    return _text(value)


class _RowReader:
    """Turns result tuples into CatalogRows, once the result's column names are known."""

    def __init__(self, mapping: CatalogMapping, names: Sequence[str]) -> None:
        self.mapping = mapping
        exact = {n: i for i, n in enumerate(names)}
        folded = {n.casefold(): i for i, n in reversed(list(enumerate(names)))}

        def index(column: str) -> int:
            found = exact.get(column, folded.get(column.casefold()))
            if found is None:
                raise ConfigError(
                    f"{mapping.source}: the query gives no column {column!r}; it gives {', '.join(names)}"
                )
            return found

        self.path_index = index(mapping.path_column)
        self.plan = [(kw, tuple(index(c) for c in cols)) for kw, cols in mapping.columns.items()]

    def row(self, values: Sequence[Any]) -> CatalogRow:
        mapping = self.mapping
        problems: list[str] = []
        out: dict[str, str | int | None] = {}
        for keyword, indexes in self.plan:
            vr = mapping.vrs.get(keyword, "LO")
            if len(indexes) > 1:
                out[keyword] = "^".join(_text(values[i]) or "" for i in indexes).rstrip("^") or None
                continue
            raw = values[indexes[0]]
            try:
                out[keyword] = _convert(raw, vr, mapping.date_format)
            except (TypeError, ValueError):
                out[keyword] = None
                problems.append(f"{keyword}: cannot read {str(raw)[:40]!r} as {vr}")
        stored = _text(values[self.path_index])
        if stored is None:
            problems.insert(0, f"no file path in column {mapping.path_column}")
            return CatalogRow("", out, tuple(problems))
        return CatalogRow(resolve_path(stored, mapping.base), out, tuple(problems))


def _message(exc: BaseException) -> str:
    lines = [line.strip().lstrip("-").strip() for line in str(exc).splitlines()]
    return "; ".join(line for line in lines if line)


def _translate(exc: Exception, target: CatalogUrl, mapping: CatalogMapping) -> Exception:
    """A firebird-driver error as the pacsindex error that says what to do."""
    codes = set(getattr(exc, "gds_codes", None) or ())
    state = str(getattr(exc, "sqlstate", "") or "")
    where = f"the Firebird catalog at {target.host}:{target.port}"
    text = _message(exc)
    if codes & _LOGIN:
        names = " or ".join(n for n in (mapping.password_env, PASSWORD_ENV) if n)
        return AuthenticationFailed(
            f"{where} refused user {target.user!r}: wrong user name or password "
            f"(the password comes from {names})"
        )
    if codes & _DENIED:
        return PermissionDenied(f"{where} does not allow this: {text}")
    if codes & _NOT_A_DATABASE:
        return ConfigError(f"{target.database!r} on {where} is not a Firebird database: {text}")
    if codes & _UNREACHABLE or state.startswith("08"):
        return SourceUnreachable(f"cannot read {where} (database {target.database!r}): {text}")
    if state.startswith("42") or state.startswith("07"):
        return ConfigError(f"the query in {mapping.source} failed: {text}")
    return SourceError(f"{where}: {text}")


def _check_reachable(target: CatalogUrl, timeout: float) -> None:
    """Fail fast and clearly when nothing answers: the client library would wait minutes."""
    try:
        socket.create_connection((target.host, target.port), timeout=timeout).close()
    except socket.gaierror as exc:
        raise SourceUnreachable(f"unknown host {target.host!r} in the catalog URL") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SourceUnreachable(
            f"cannot reach the Firebird catalog at {target.host}:{target.port}: {reason} "
            "(is the Firebird server running, and the port open?)"
        ) from exc


def read_catalog(
    url: str | CatalogUrl,
    mapping: CatalogMapping,
    password: str,
    *,
    connect_timeout: float = 10.0,
) -> Iterator[CatalogRow]:
    """Stream the catalog's rows as CatalogRows. The connection stays open while the iterator is consumed
    and is closed when it ends, fails or is closed early. Raises SourceUnreachable, AuthenticationFailed,
    PermissionDenied, ConfigError (bad query or columns) or SourceError, never the driver's own errors."""
    target = url if isinstance(url, CatalogUrl) else parse_catalog_url(url)
    try:
        from firebird.driver import (
            DatabaseError,
            DefaultAction,
            Isolation,
            StatementType,
            TraAccessMode,
            connect,
            tpb,
        )
        from firebird.driver.fbapi import get_api

        get_api()
    except (ImportError, OSError) as exc:  # FileNotFoundError when libfbclient is missing
        raise ConfigError(
            "the Firebird client library is not installed (Debian/Ubuntu: apt install libfbclient2; "
            f"Windows: the Firebird client): {exc}"
        ) from exc

    _check_reachable(target, connect_timeout)
    log.info("reading catalog %s with %s", target, mapping.source)
    try:
        con = connect(target.dsn, user=target.user, password=password, charset=mapping.charset)
    except DatabaseError as exc:
        raise _translate(exc, target, mapping) from exc
    count = 0
    try:
        manager = con.transaction_manager(
            tpb(Isolation.READ_COMMITTED_RECORD_VERSION, access_mode=TraAccessMode.READ),
            DefaultAction.ROLLBACK,
        )
        with manager, manager.cursor() as cursor:
            statement = cursor.prepare(mapping.query)
            try:
                if statement.type not in (StatementType.SELECT, StatementType.SELECT_FOR_UPD):
                    raise ConfigError(f"{mapping.source}: the query must be a SELECT")
                cursor.execute(statement)
                reader = _RowReader(mapping, [d[0] for d in cursor.description or ()])
                while batch := cursor.fetchmany(mapping.batch_size):
                    for values in batch:
                        count += 1
                        yield reader.row(values)
            finally:
                cursor.close()  # the result set first: it belongs to the statement
                statement.free()
    except DatabaseError as exc:
        raise _translate(exc, target, mapping) from exc
    finally:
        try:
            con.close()
        except DatabaseError:  # the connection is already gone; nothing left to release
            log.debug("closing the catalog connection failed", exc_info=True)
        log.debug("catalog %s: %d rows read", target, count)


class CatalogSource:
    """A `Source` for an archive whose patient data lives in a Firebird catalog: the catalog's rows name the
    files (usually bare JPEG 2000) and give their fields, so files are stat'ed but never opened to index
    them. Rows are grouped by folder as they stream; a listed file that is missing, or a row without a
    path, is an error of the run, not a crash."""

    def __init__(self, url: str, mapping_path: str | os.PathLike[str], environ: Mapping[str, str]) -> None:
        self.target = parse_catalog_url(url)
        self.mapping = load_mapping(mapping_path)
        self.password = catalog_password(self.mapping, environ)
        self.label = f"catalog:{self.target}"
        self._records: dict[str, HeaderRecord] = {}

    def check(self) -> None:
        _check_reachable(self.target, 10.0)

    def reader(self) -> Any:
        from pacsindex.sources.files import LocalReader

        return LocalReader()

    def complete_roots(self) -> list[tuple[str, str]]:
        return []

    def known_record(self, path: str) -> HeaderRecord | None:
        """The catalog's fields for a file it listed (handed over once, so memory stays bounded)."""
        return self._records.pop(path, None)

    def walk(self, cancel: Any, skip: Any = None) -> Iterator[Any]:  # records, not folders: nothing to skip
        from pacsindex.sources.files import DirListing, Entry, WalkError, join_sep, split_path

        folder: str | None = None
        entries: list[Entry] = []

        def flush() -> Iterator[Any]:
            if entries and folder is not None:
                yield DirListing(folder, join_sep(folder), list(entries), False)
            entries.clear()

        for row in read_catalog(self.target, self.mapping, self.password):
            if cancel.is_set():
                return
            if not row.path:
                yield WalkError(f"{self.label} (a row without a file)", "; ".join(row.problems), False)
                continue
            parent, name = split_path(row.path)
            if parent != folder or len(entries) >= 256:
                yield from flush()
                folder = parent
            try:
                st = os.stat(row.path)
            except OSError as exc:
                yield WalkError(
                    row.path, f"listed in the catalog but not readable: {exc.strerror or exc}", False
                )
                continue
            self._records[row.path] = row.record()
            entries.append(Entry(name, st.st_size, st.st_mtime_ns))
        yield from flush()
