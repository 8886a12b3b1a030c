"""Where a Firebird catalog is and how to read it: the `firebird://` URL, mapping.toml, the password's
environment variable, and the full path of a file the catalog names (see reader.py for the reading).

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
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pacsindex.errors import ConfigError

DEFAULT_PORT = 3050
PASSWORD_ENV = "PACSINDEX_CATALOG_PASSWORD"
PATH_COLUMN = "path"
_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\|/|[A-Za-z][A-Za-z0-9+.-]*://)")
_WINDOWS_BASE = re.compile(r"^(?:[A-Za-z]:|\\\\)")
_WINDOWS_DB = re.compile(r"^[A-Za-z]:[\\/]")
_MAPPING_KEYS = {"query", "columns", "base", "password_env", "charset", "batch_size", "date_format"}


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


def catalog_password(mapping: CatalogMapping, env: Mapping[str, str]) -> str:
    """The catalog password: from the mapping's `password_env` variable, else PACSINDEX_CATALOG_PASSWORD, in
    `env` (the environment the entry point passes down: nothing here reads os.environ)."""
    names = [n for n in (mapping.password_env, PASSWORD_ENV) if n]
    for name in names:
        value = env.get(name)
        if value:
            return value
    raise ConfigError(f"no password for the catalog: set {' or '.join(names)} in the environment")


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
