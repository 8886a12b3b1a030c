"""The NAS settings an admin saves from the web page: host, share, path, user, password, domain, port.

Validated here (a host name, IPv4 or IPv6 address, Windows share-name rules, a port, a path inside the share
without `..`), stored with `pacsindex.config.saved` in the data directory (section "nas", owner-only,
because it
holds the password), and used in two places: the NAS's `smb://host[:port]/share/path` becomes one of the
indexing roots (`indexing_roots`), and an smb:// root on that host logs in with the saved account
(`credentials_for`; other hosts keep `PACSINDEX_SMB_USER` / `PACSINDEX_SMB_PASSWORD`).

The password is write-only: `NasSettings.public()` says whether one is set, never what it is, and saving
without a password keeps the stored one. It is never logged and never part of a URL.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pacsindex.config import saved
from pacsindex.errors import ConfigError
from pacsindex.sources.smb.address import (
    DEFAULT_PORT,
    SmbCredentials,
    SmbLocation,
    require_encryption_from,
    url_for,
)

SECTION = "nas"
SECRETS = ("password",)

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_SHARE_BAD = set('"/\\[]:|<>+=;,*?')  # characters Windows does not allow in a share name
_PATH_BAD = set('<>:"|?*')
_DOMAIN_BAD = set('\\/:*?"<>|')


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


@dataclass(frozen=True)
class NasSettings:
    """Validated NAS settings. The password is left out of repr."""

    host: str
    share: str
    path: str = ""  # inside the share, '/'-separated, no leading or trailing '/'
    user: str = ""
    password: str = field(default="", repr=False)
    domain: str = ""
    port: int = DEFAULT_PORT

    @property
    def url(self) -> str:
        """The indexing root: smb://host[:port]/share/path, never with credentials."""
        return url_for(self.host, self.share, self.path, self.port)

    @property
    def credentials(self) -> SmbCredentials:
        return SmbCredentials(self.user, self.password, self.domain)

    def stored(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "share": self.share,
            "path": self.path,
            "user": self.user,
            "password": self.password,
            "domain": self.domain,
            "port": self.port,
        }

    def public(self) -> dict[str, Any]:
        """For the API: everything but the password, plus password_set and the root's URL."""
        return {**saved.public(self.stored(), SECRETS), "url": self.url}


def validate(values: Mapping[str, Any]) -> NasSettings:
    """NasSettings from what an admin typed; ConfigError naming the field and what is wrong."""

    def text(name: str, limit: int) -> str:
        value = values.get(name)
        value = "" if value is None else value
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be text")
        value = value.strip() if name != "password" else value
        if len(value) > limit:
            raise ConfigError(f"{name} is too long (at most {limit} characters)")
        if (name != "password" and _control(value)) or "\x00" in value:
            raise ConfigError(f"{name} must not contain control characters")
        return value

    host, share, user = text("host", 253), text("share", 80), text("user", 256)
    path, domain, password = text("path", 1024), text("domain", 64), text("password", 1024)
    missing = [n for n, v in (("host", host), ("share", share), ("user", user)) if not v]
    if missing:
        raise ConfigError(f"required: {', '.join(missing)}")
    host = _valid_host(host)
    if set(share) & _SHARE_BAD or share.strip(". ") == "":
        raise ConfigError(
            f'share {share!r} is not a share name: leave out \\ / : * ? " < > | [ ] + = ; , '
            "(the share's own name, e.g. Image Archiving; folders inside it go in path)"
        )
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p.strip() == ".." for p in parts):
        raise ConfigError("path must stay inside the share: '..' is not allowed")
    if any(set(p) & _PATH_BAD for p in parts):
        raise ConfigError('path holds a character a Windows folder name cannot have (< > : " | ? *)')
    if set(domain) & _DOMAIN_BAD:
        raise ConfigError(f"domain {domain!r} is not a domain name (e.g. CLINIC)")
    port = values.get("port")
    port = DEFAULT_PORT if port in (None, "") else port
    if isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).strip().isdigit():
        raise ConfigError("port must be a number from 1 to 65535 (445 for SMB)")
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"port {port} is not between 1 and 65535 (445 for SMB)")
    return NasSettings(host, share, "/".join(parts), user, password, domain, int(port))


def _valid_host(host: str) -> str:
    if "://" in host or host.startswith(("\\\\", "//")) or "/" in host or "\\" in host:
        raise ConfigError(
            "host takes just the NAS's name or IP address (nas or 192.168.1.20): the share "
            "and folders have their own fields"
        )
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        return str(ip)  # IPv4 or IPv6 (without brackets; the smb:// address adds them)
    if re.fullmatch(r"[0-9.]+", host) or not _HOST.match(host):
        raise ConfigError(
            f"host {host!r} is not a host name or IP address (e.g. nas, nas.clinic.local, 192.168.1.20)"
        )
    return host.rstrip(".").lower()


def load(data_dir: Path) -> NasSettings | None:
    """The saved NAS settings, or None when none are saved. ConfigError if the file is damaged."""
    values = saved.load(data_dir, SECTION)
    if not values:
        return None
    try:
        return validate(values)
    except ConfigError as exc:
        raise ConfigError(f"the saved NAS settings are not usable ({exc}): save them again") from exc


def merge(
    data_dir: Path, values: Mapping[str, Any], *, clear_password: bool = False
) -> tuple[NasSettings, str]:
    """Settings from `values`, validated, with the stored password kept when none is given (and the NAS is
    the same host and port: a password is never sent to another server unasked). Also says what happened
    to the password: "set", "kept", "cleared" or "none"."""
    new = validate(values)
    if clear_password:
        return NasSettings(**{**new.stored(), "password": ""}), "cleared"
    if values.get("password"):
        return new, "set"
    old = load(data_dir)
    if old is not None and old.password and (old.host, old.port) == (new.host, new.port):
        return NasSettings(**{**new.stored(), "password": old.password}), "kept"
    return new, "none"


def save(data_dir: Path, nas: NasSettings) -> Path:
    return saved.save(data_dir, SECTION, nas.stored())


def forget(data_dir: Path) -> bool:
    """Remove the saved NAS settings; True if there were some."""
    path = saved.path_of(data_dir, SECTION)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _data_dir(settings: Any) -> Path | None:
    path = getattr(settings, "data_path", None)
    return path if isinstance(path, Path) else None


def indexing_roots(settings: Any) -> list[str]:
    """The roots an indexing run takes by default: the configured ones, then the saved NAS's URL."""
    roots = list(getattr(settings, "roots", ()))
    data_dir = _data_dir(settings)
    nas = load(data_dir) if data_dir is not None else None
    if nas is not None and nas.url not in roots:
        roots.append(nas.url)
    return roots


def credentials_for(loc: SmbLocation, settings: Any) -> SmbCredentials:
    """The account for an smb:// root: the saved NAS's when the root is on that host and port, otherwise the
    one in `settings` (PACSINDEX_SMB_USER, ...; or SmbCredentials or a mapping given directly)."""
    data_dir = _data_dir(settings)
    nas = load(data_dir) if data_dir is not None else None
    if nas is not None and (nas.host, nas.port) == (loc.host, loc.port):
        return replace(nas.credentials, require_encryption=require_encryption_from(settings))
    return SmbCredentials.from_settings(settings)
