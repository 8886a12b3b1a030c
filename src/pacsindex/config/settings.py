"""Settings: one frozen object from a TOML file and `PACSINDEX_*` environment variables, validated at
start-up and passed explicitly (nothing reads the environment later).

Precedence, lowest first: defaults → the TOML file (`--config FILE` or `PACSINDEX_CONFIG`) → environment
variables (`PACSINDEX_<NAME>`, upper case) → command-line options. Secrets (NAS passwords) never live here
in the repo: they come from the environment or from the owner-only files in the data directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pacsindex.errors import ConfigError

ENV_PREFIX = "PACSINDEX_"


@dataclass(frozen=True)
class Settings:
    db: Path = Path("pacsindex.db")
    data_dir: Path | None = None  # default: the folder holding the index
    status_file: Path | None = None  # default: index_status.json beside the index
    timezone: str = "Africa/Johannesburg"
    workers: int = 0  # 0: one header-reading process per CPU (one even on a single CPU); 1: in-process
    roots: tuple[str, ...] = ()  # default indexing roots for the web service
    host: str = "127.0.0.1"
    port: int = 8080
    session_idle_minutes: int = 30
    secure_cookies: bool = False  # set true behind HTTPS
    signin_failures_per_user: int = 5  # failed sign-ins in a row before that user name is locked
    signin_failures_per_address: int = 20  # failed sign-ins from one client address before it is locked
    signin_lockout_minutes: int = 15
    forwarded_allow_ips: str = "127.0.0.1"  # reverse proxies whose X-Forwarded-For/-Proto are trusted
    smb_user: str = ""  # NAS account for smb:// roots (PACSINDEX_SMB_USER); DOMAIN\user works too
    smb_password: str = field(default="", repr=False)  # PACSINDEX_SMB_PASSWORD only, never the TOML file
    smb_domain: str = ""
    smb_connect_timeout: int = 10  # seconds to wait for the NAS to answer; one attempt gives up at 30
    smb_require_encryption: bool = False  # refuse a NAS that does not offer SMB3 encryption
    shares_db: Path | None = None  # share links; default: shares.db in the data directory
    share_default_hours: int = 24  # how long a new share link lasts unless its creator says otherwise
    share_max_hours: int = 168  # the longest a share link may last (7 days)
    share_max_streams: int = 4  # share downloads sent at once; more get 429 with Retry-After
    dicomweb_max_streams: int = 8  # DICOMweb retrievals sent at once; more get 429 with Retry-After
    dicomweb_token_failures_per_address: int = 20  # wrong API tokens from one address before it is locked
    max_request_bytes: int = 1_048_576  # the largest request body accepted (413 beyond)
    share_max_streams_per_link: int = 2  # of those, for one link (issue 17)
    share_max_streams_per_client: int = 2  # of those, to one client address (issue 17)
    share_stall_seconds: int = 60  # a download whose client reads nothing this long loses its place
    public_url: str = ""  # e.g. https://pacs.example.co.za: the start of share links; default: as asked
    cors_origins: tuple[str, ...] = ()  # viewers on other origins allowed to call /dicom-web (CORS)
    render_workers: int = 2  # processes that decode and draw images (viewer, thumbnails, /rendered)
    thumbnail_cache_mb: int = 200  # series thumbnails kept in the data directory, least recently used dropped
    # operations (pacsindex.ops): the indexing schedule, retention (POPIA s14), the disk warning
    index_every_minutes: float = 15.0  # incremental re-scan while `pacsindex serve` runs; 0: none
    index_full_at: str = "02:00"  # the nightly full pass, practice time (HH:MM); "": none
    quick_recent_hours: float = 48.0  # a quick re-scan lists a study's folders while they changed this lately
    retention_audit_days: int = 2557  # 7 years, as health records
    retention_shares_days: int = 365  # expired or withdrawn share links and their access logs
    retention_sends_days: int = 90  # finished Orthanc sends
    retention_sessions_days: int = 30  # ended sign-in sessions
    retention_signin_failures_days: int = 30  # failed sign-ins (the lockout itself lasts minutes)
    disk_warning_percent: int = 10  # warn when less than this much of the data directory's disk is free
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections later features read

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def data_path(self) -> Path:
        return (
            self.data_dir
            if self.data_dir is not None
            else (self.db.parent if str(self.db.parent) else Path("."))
        )

    @property
    def shares_path(self) -> Path:
        return self.shares_db if self.shares_db is not None else self.data_path / "shares.db"

    @property
    def status_path(self) -> Path:
        return self.status_file if self.status_file is not None else self.db.parent / "index_status.json"

    def with_overrides(self, **values: Any) -> Settings:
        clean = {k: v for k, v in values.items() if v is not None}
        return _validated(dataclasses.replace(self, **_coerce_all(clean)))


_SIMPLE = {f.name: f for f in fields(Settings) if f.name != "extra"}
_SECRETS = {"smb_password"}  # read from the environment only: a settings file tends to end up in a repo


def _coerce(name: str, value: Any) -> Any:
    kind = str(_SIMPLE[name].type)
    try:
        if name == "cors_origins" and isinstance(value, str):
            return tuple(o for o in re.split(r"[,\s]+", value) if o)  # origins hold ":", so not pathsep
        if "Path" in kind:
            return Path(os.path.expanduser(str(value))) if value not in (None, "") else None
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if "tuple" in kind:
            if isinstance(value, str):
                return tuple(p for p in value.split(os.pathsep) if p)
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} has a bad value: {value!r}") from exc


def _coerce_all(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _coerce(k, v) for k, v in values.items()}


def _validated(s: Settings) -> Settings:
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {s.timezone!r} (try Africa/Johannesburg)") from exc
    if s.workers < 0 or s.workers > 256:
        raise ConfigError("workers must be between 0 (automatic) and 256")
    if not 0 < s.port < 65536:
        raise ConfigError(f"port {s.port} is not a TCP port")
    if s.session_idle_minutes < 1:
        raise ConfigError("session_idle_minutes must be at least 1")
    if s.signin_failures_per_user < 1 or s.signin_failures_per_address < 1:
        raise ConfigError("signin_failures_per_user and signin_failures_per_address must be at least 1")
    if s.signin_lockout_minutes < 1:
        raise ConfigError("signin_lockout_minutes must be at least 1")
    if not 1 <= s.smb_connect_timeout <= 30:
        raise ConfigError("smb_connect_timeout must be between 1 and 30 seconds")
    if not 1 <= s.share_default_hours <= s.share_max_hours <= 24 * 366:
        raise ConfigError("share_default_hours must be 1 to share_max_hours, and that a year at most")
    if not 1 <= s.share_max_streams <= 256:
        raise ConfigError("share_max_streams must be between 1 and 256")
    if not 1 <= s.dicomweb_max_streams <= 256:
        raise ConfigError("dicomweb_max_streams must be between 1 and 256")
    if s.dicomweb_token_failures_per_address < 1:
        raise ConfigError("dicomweb_token_failures_per_address must be at least 1")
    if not 1024 <= s.max_request_bytes <= 1 << 30:
        raise ConfigError("max_request_bytes must be between 1024 and 1073741824")
    if not 1 <= s.render_workers <= 64:
        raise ConfigError("render_workers must be between 1 and 64")
    if not 1 <= s.thumbnail_cache_mb <= 1_000_000:
        raise ConfigError("thumbnail_cache_mb must be between 1 and 1000000")
    if not 1 <= s.share_max_streams_per_link <= 256 or not 1 <= s.share_max_streams_per_client <= 256:
        raise ConfigError("share_max_streams_per_link and share_max_streams_per_client must be 1 to 256")
    if not 1 <= s.share_stall_seconds <= 3600:
        raise ConfigError("share_stall_seconds must be between 1 and 3600")
    if s.public_url and not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", s.public_url):
        raise ConfigError(f"public_url must be an http:// or https:// address, not {s.public_url!r}")
    for origin in s.cors_origins:
        if origin != "*" and not re.match(r"^https?://[^/?#\s]+$", origin):
            raise ConfigError(f"cors_origins: {origin!r} is not an origin like http://viewer.example:3000")
    _validated_ops(s)
    return s


def _validated_ops(s: Settings) -> None:
    if not 0 <= s.index_every_minutes <= 7 * 24 * 60:
        raise ConfigError("index_every_minutes must be between 0 (no schedule) and a week")
    if s.index_full_at and not re.match(r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$", s.index_full_at):
        raise ConfigError(f"index_full_at must be a time such as 02:00, not {s.index_full_at!r}")
    if not 0 <= s.quick_recent_hours <= 24 * 366:
        raise ConfigError("quick_recent_hours must be between 0 and a year (8784)")
    for name in (
        "retention_audit_days",
        "retention_shares_days",
        "retention_sends_days",
        "retention_sessions_days",
        "retention_signin_failures_days",
    ):
        if not 1 <= getattr(s, name) <= 365 * 100:
            raise ConfigError(f"{name} must be between 1 and 36500 days")
    if not 0 <= s.disk_warning_percent <= 100:
        raise ConfigError("disk_warning_percent must be between 0 and 100")


def load(
    config_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from a TOML file and the environment; ConfigError on anything unknown or bad."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for key, value in data.items():
            if key in _SECRETS:
                raise ConfigError(f"{key} does not belong in {path}: set {ENV_PREFIX}{key.upper()} instead")
            if key in _SIMPLE:
                values[key] = value
            elif isinstance(value, dict):
                extra[key] = value
            else:
                raise ConfigError(f"unknown setting {key!r} in {path}")
    for name in _SIMPLE:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    settings = Settings(**_coerce_all(values), extra=extra)
    return _validated(settings)
