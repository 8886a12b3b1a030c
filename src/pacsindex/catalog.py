"""A Firebird catalog: image files (JPEG 2000, mostly) whose patient, study and series data live in a
Firebird database instead of a DICOM header.

    pacsindex index --catalog firebird://USER@HOST[:PORT]/DATABASE --mapping mapping.toml

The URL names the server (port 3050 by default), the Firebird user and the database as the server knows
it: an alias from its databases.conf (`/catalog`), a path with folders, which is absolute on the server
(`/var/lib/pacs/catalog.fdb` or `//var/lib/pacs/catalog.fdb`), or a Windows path (`/C:/PACS/CATALOG.FDB`);
spaces as %20. The password is never in the URL or the mapping (both end up in shell history, logs and
backups): it comes from PACSINDEX_CATALOG_PASSWORD, or from the environment variable the mapping names in
`password_env` (see `catalog_password`).

mapping.toml names one SELECT and which of its columns give which DICOM fields (DICOM keywords, checked
against pydicom's dictionary) and the file's path:

    query = '''
    SELECT p.SURNAME, p.FIRST_NAMES, p.HOSP_NO, p.SA_ID, p.BIRTH_DATE, p.SEX, st.STUDY_UID, st.STUDY_DATE,
           st.DESCRIPTION AS STUDY_DESC, st.INSTITUTION, se.SERIES_UID, se.SERIES_NO, se.MODALITY, i.FILE_PATH
    FROM IMAGES i JOIN SERIES se ON se.ID = i.SERIES_ID JOIN STUDIES st ON st.ID = se.STUDY_ID
         JOIN PATIENTS p ON p.ID = st.PATIENT_ID
    '''
    base = "Z:/Image Archiving/J2K"   # relative file paths are under here (a folder, UNC path or smb:// URL;
                                      # itself relative: to the mapping file's folder)
    password_env = "PACS_DB_PASSWORD" # optional: where the password is, instead of PACSINDEX_CATALOG_PASSWORD
    charset = "UTF8"                  # optional: the connection character set (the server converts to it)
    batch_size = 500                  # optional: rows fetched per round trip
    date_format = "%d/%m/%Y"          # optional: for dates kept as text; default YYYYMMDD or YYYY-MM-DD

    [columns]
    path = "FILE_PATH"                       # required
    PatientName = ["SURNAME", "FIRST_NAMES"] # several columns: joined as name components (DOE^JANE)
    PatientID = "HOSP_NO"
    OtherPatientIDs = "SA_ID"
    PatientBirthDate = "BIRTH_DATE"          # a DATE, TIMESTAMP or text column: stored as YYYYMMDD
    PatientSex = "SEX"
    StudyInstanceUID = "STUDY_UID"
    StudyDate = "STUDY_DATE"
    StudyTime = "STUDY_DATE"                 # one TIMESTAMP column can give both date and time
    StudyDescription = "STUDY_DESC"
    InstitutionName = "INSTITUTION"
    SeriesInstanceUID = "SERIES_UID"
    SeriesNumber = "SERIES_NO"               # integer fields (IS, US...) become ints
    Modality = "MODALITY"                    # ... and any other DICOM keyword

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
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pacsindex.errors import (
    AuthenticationFailed,
    ConfigError,
    PermissionDenied,
    SourceError,
    SourceUnreachable,
)
from pacsindex.headers import HeaderRecord

log = logging.getLogger(__name__)

DEFAULT_PORT = 3050
PASSWORD_ENV = "PACSINDEX_CATALOG_PASSWORD"
PATH_COLUMN = "path"
_RECORD_FIELDS = frozenset(f.name for f in fields(HeaderRecord))
_INT_VRS = frozenset({"IS", "SS", "US", "SL", "UL", "SV", "UV"})
_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\|/|[A-Za-z][A-Za-z0-9+.-]*://)")
_WINDOWS_BASE = re.compile(r"^(?:[A-Za-z]:|\\\\)")
_WINDOWS_DB = re.compile(r"^[A-Za-z]:[\\/]")
_MAPPING_KEYS = {"query", "columns", "base", "password_env", "charset", "batch_size", "date_format"}

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
class CatalogUrl:
    """Where the catalog is. Carries no password: the URL cannot hold one."""

    user: str
    host: str
    port: int
    database: str

    @property
    def dsn(self) -> str:
        """Firebird's own connection string, `host/port:database`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}/{self.port}:{self.database}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        database = self.database if self.database.startswith("/") else "/" + self.database
        return f"firebird://{self.user}@{host}:{self.port}{database}"


def parse_catalog_url(url: str) -> CatalogUrl:
    """`firebird://USER@HOST[:PORT]/DATABASE` → CatalogUrl; ConfigError saying what is wrong."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"the catalog URL has a bad host or port: {exc}") from exc
    if parts.scheme.lower() != "firebird":
        raise ConfigError("a catalog URL looks like firebird://USER@HOST:PORT/DATABASE")
    if parts.password is not None:
        # Say nothing that repeats the URL: it holds the password.
        raise ConfigError(f"put no password in the catalog URL: set {PASSWORD_ENV} instead")
    if not parts.username:
        raise ConfigError("the catalog URL names no user: firebird://USER@HOST:PORT/DATABASE")
    if not parts.hostname:
        raise ConfigError("the catalog URL names no host: firebird://USER@HOST:PORT/DATABASE")
    if parts.query or parts.fragment:
        raise ConfigError("the catalog URL takes no ?query or #fragment")
    rest = unquote(parts.path)[1:]
    if not rest:
        raise ConfigError("the catalog URL names no database: firebird://USER@HOST:PORT/DATABASE")
    if _WINDOWS_DB.match(rest) or rest.startswith("/") or "/" not in rest:
        database = rest  # C:/PACS/CAT.FDB, //abs/path (already absolute), or an alias
    else:
        database = "/" + rest  # a path with folders is absolute on the server
    return CatalogUrl(unquote(parts.username), parts.hostname, port or DEFAULT_PORT, database)


@dataclass(frozen=True)
class CatalogMapping:
    """A parsed mapping.toml: the query, DICOM keyword → result columns, and how to read them."""

    query: str
    columns: Mapping[str, tuple[str, ...]]
    path_column: str
    base: str | None = None
    password_env: str | None = None
    charset: str = "UTF8"
    batch_size: int = 500
    date_format: str | None = None
    source: str = "mapping.toml"  # where it came from, for messages
    vrs: Mapping[str, str] = field(default_factory=dict)  # DICOM keyword → VR, from pydicom's dictionary


def _vr_of(keyword: str, source: str) -> str:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ConfigError(f"{source}: [columns] {keyword!r} is not a DICOM keyword (e.g. PatientName)")
    return str(dictionary_VR(tag))


def _is_local_relative(base: str) -> bool:
    return not _ABSOLUTE.match(base) and not _WINDOWS_BASE.match(base)


def parse_mapping(
    data: Mapping[str, Any], source: str = "mapping.toml", folder: Path | None = None
) -> CatalogMapping:
    """Check a mapping read from TOML; `folder` resolves a relative `base` (the mapping file's folder)."""
    if "password" in data:
        raise ConfigError(
            f"{source}: a password does not belong in the mapping; name an environment variable "
            f"with password_env, or set {PASSWORD_ENV}"
        )
    unknown = set(data) - _MAPPING_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"{source}: query must be the SELECT that lists the image files")
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, Mapping):
        raise ConfigError(f"{source}: a [columns] table must say which column gives what")
    path_column = raw_columns.get(PATH_COLUMN)
    if not isinstance(path_column, str) or not path_column.strip():
        raise ConfigError(f"{source}: [columns] path must name the column holding the file's path")
    columns: dict[str, tuple[str, ...]] = {}
    vrs: dict[str, str] = {}
    for keyword, value in raw_columns.items():
        if keyword == PATH_COLUMN:
            continue
        vr = _vr_of(keyword, source)
        names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError(f"{source}: [columns] {keyword} must name a column (or a list of columns)")
        if len(names) > 1 and vr != "PN":
            raise ConfigError(f"{source}: only names (PN fields) can join several columns, not {keyword}")
        columns[keyword] = tuple(n.strip() for n in names)
        vrs[keyword] = vr
    base = data.get("base")
    if base is not None:
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(f"{source}: base must be the folder the catalog's relative paths are under")
        base = base.strip()
        if folder is not None and _is_local_relative(base):
            base = str(folder / base)
    password_env = data.get("password_env")
    if password_env is not None and (not isinstance(password_env, str) or not password_env.strip()):
        raise ConfigError(f"{source}: password_env must be the name of an environment variable")
    charset = data.get("charset", "UTF8")
    if not isinstance(charset, str) or not re.fullmatch(r"[A-Za-z0-9_]+", charset):
        raise ConfigError(f"{source}: charset must be a Firebird character set name such as UTF8")
    batch_size = data.get("batch_size", 500)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= 100_000:
        raise ConfigError(f"{source}: batch_size must be a number from 1 to 100000")
    date_format = data.get("date_format")
    if date_format is not None and (not isinstance(date_format, str) or "%" not in date_format):
        raise ConfigError(f"{source}: date_format must be a strptime format such as %d/%m/%Y")
    return CatalogMapping(
        query=query,
        columns=columns,
        path_column=path_column.strip(),
        base=base,
        password_env=password_env.strip() if password_env else None,
        charset=charset.upper(),
        batch_size=batch_size,
        date_format=date_format,
        source=source,
        vrs=vrs,
    )


def load_mapping(path: str | os.PathLike[str]) -> CatalogMapping:
    """Read and check a mapping.toml; ConfigError if it is missing or wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"mapping file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read mapping file {path}: {exc}") from exc
    return parse_mapping(data, source=str(path), folder=path.resolve().parent)


def catalog_password(mapping: CatalogMapping, environ: Mapping[str, str] | None = None) -> str:
    """The catalog password: from the mapping's `password_env` variable, else PACSINDEX_CATALOG_PASSWORD."""
    env = os.environ if environ is None else environ
    names = [n for n in (mapping.password_env, PASSWORD_ENV) if n]
    for name in names:
        value = env.get(name)
        if value:
            return value
    raise ConfigError(f"no password for the catalog: set {' or '.join(names)} in the environment")


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


def resolve_path(stored: str, base: str | None) -> str:
    """The full path of a file the catalog names: absolute ones as they are, relative ones under `base`
    with the separator `base` uses (catalogs written on Windows keep backslashes)."""
    text = stored.strip()
    if _ABSOLUTE.match(text):
        return text
    if base is None:
        raise ConfigError(
            f"the catalog gives relative file paths (such as {text!r}): set base in the mapping to the "
            "folder they are under"
        )
    windows = bool(_WINDOWS_BASE.match(base)) or ("\\" in base and "/" not in base)
    sep = "\\" if windows else "/"
    parts = [p for p in re.split(r"[\\/]+", text) if p not in ("", ".")]
    return base.rstrip("\\/") + sep + sep.join(parts)


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

    def __init__(
        self, url: str, mapping_path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
    ):
        self.target = parse_catalog_url(url)
        self.mapping = load_mapping(mapping_path)
        self.password = catalog_password(self.mapping, environ)
        self.label = f"catalog:{self.target}"
        self._records: dict[str, HeaderRecord] = {}

    def check(self) -> None:
        _check_reachable(self.target, 10.0)

    def reader(self) -> Any:
        from pacsindex.sources import LocalReader

        return LocalReader()

    def complete_roots(self) -> list[tuple[str, str]]:
        return []

    def known_record(self, path: str) -> HeaderRecord | None:
        """The catalog's fields for a file it listed (handed over once, so memory stays bounded)."""
        return self._records.pop(path, None)

    def walk(self, cancel: Any) -> Iterator[Any]:
        from pacsindex.sources import DirListing, Entry, WalkError, join_sep, split_path

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
