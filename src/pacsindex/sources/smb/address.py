"""Where a NAS share is and who logs in to it: `smb://host[:port]/share/path` addresses (`SmbLocation`, host
names, IPv4 and bracketed IPv6 addresses) and the account with how it must connect (`SmbCredentials`). No
network here; connections are `pacsindex.sources.smb.conn`. Passwords never appear in repr, labels or URLs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pacsindex.errors import ConfigError

__all__ = [
    "DEFAULT_PORT",
    "SmbCredentials",
    "SmbLocation",
    "bare_host",
    "connect_timeout_from",
    "require_encryption_from",
    "unc_host",
    "url_for",
]

DEFAULT_PORT = 445


# -- who and where ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmbCredentials:
    """The NAS account. The password is left out of repr, and never logged or put in a message."""

    user: str = ""
    password: str = field(default="", repr=False)
    domain: str = ""
    require_encryption: bool = False  # smb_require_encryption: refuse a NAS without SMB3 encryption

    @property
    def login(self) -> str:
        return f"{self.domain}\\{self.user}" if self.domain and "\\" not in self.user else self.user

    @classmethod
    def from_settings(cls, settings: Any = None) -> SmbCredentials:
        """From `config.Settings` (smb_user, smb_password, smb_domain: PACSINDEX_SMB_*), or from NAS settings
        (an object or mapping with user, password, domain). None loads the settings."""
        if isinstance(settings, SmbCredentials):
            return settings
        settings = _loaded(settings)
        return cls(
            _setting(settings, "smb_user", "user"),
            _setting(settings, "smb_password", "password"),
            _setting(settings, "smb_domain", "domain"),
            require_encryption_from(settings),
        )


def _loaded(settings: Any) -> Any:
    """The settings given, or (None) the defaults. Nothing here reads the environment or the config file:
    the entry point builds `Settings` once and passes it down."""
    if settings is not None:
        return settings
    from pacsindex.config.settings import Settings

    return Settings()


def _setting(settings: Any, *names: str, default: Any = "") -> Any:
    for name in names:
        value = settings.get(name) if isinstance(settings, Mapping) else getattr(settings, name, None)
        if value not in (None, ""):
            return value
    return default


def connect_timeout_from(settings: Any) -> float:
    if isinstance(settings, SmbCredentials):
        return 10.0
    settings = _loaded(settings)
    return float(_setting(settings, "smb_connect_timeout", "connect_timeout", default=10.0))


def require_encryption_from(settings: Any) -> bool:
    """The `smb_require_encryption` setting (False when `settings` has none)."""
    value = _setting(settings, "smb_require_encryption", "require_encryption", default=False)
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def bare_host(host: str) -> str:
    """A host as the network wants it: an IPv6 address without its URL brackets, lower case."""
    inner = host.strip().lower()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    address, percent, zone = inner.partition("%")  # fe80::1%eth0: a link-local address and its interface
    try:
        return str(ipaddress.ip_address(address)) + percent + zone
    except ValueError:
        return inner


@dataclass(frozen=True)
class SmbLocation:
    """A parsed `smb://host[:port]/share/path`, never with credentials in it."""

    host: str  # a name, an IPv4 address, or an IPv6 address without brackets
    port: int
    share: str
    path: str = ""  # inside the share, '/'-separated, no leading or trailing '/'

    @classmethod
    def parse(cls, url: str) -> SmbLocation:
        if url[:6].lower() != "smb://":
            raise ConfigError(f"not an smb:// address: {url}")
        hostport, _, rest = url[6:].replace("\\", "/").partition("/")
        if "@" in hostport:
            raise ConfigError(
                "put the NAS user name and password in PACSINDEX_SMB_USER and "
                "PACSINDEX_SMB_PASSWORD (or the NAS settings), not in the smb:// address"
            )
        host, port_text = hostport, ""
        if hostport.startswith("["):  # [IPv6]:port, as in any URL
            inner, bracket, after = hostport[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                raise ConfigError(f"expected smb://[IPv6 address]:port/share/path, got {url!r}")
            host, port_text = f"[{inner}]", after[1:]
        elif hostport.count(":") == 1:
            host, _, port_text = hostport.partition(":")
        elif hostport.count(":") > 1:
            raise ConfigError(f"write an IPv6 address in brackets: smb://[{hostport}]/share, not {url!r}")
        if port_text and not port_text.isdigit():
            raise ConfigError(f"expected smb://host[:port]/share/path, got {url!r}")
        port = int(port_text) if port_text else DEFAULT_PORT
        parts = [p for p in rest.split("/") if p]
        host = bare_host(host)
        if not host or not parts or not 0 < port < 65536:
            raise ConfigError(f"expected smb://host[:port]/share/path, got {url!r}")
        return cls(host, port, parts[0], "/".join(parts[1:]))

    @property
    def url_host(self) -> str:
        """The host as an address writes it: IPv6 in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def server(self) -> str:
        return f"{self.url_host}:{self.port}" if self.port != DEFAULT_PORT else self.url_host

    @property
    def share_url(self) -> str:
        return f"smb://{self.server}/{self.share}"

    @property
    def url(self) -> str:
        return self.share_url + (f"/{self.path}" if self.path else "")

    def name_of(self, url: str) -> str:
        """The share-relative SMB name (backslashes) of a URL on this share."""
        base = self.share_url
        if url[: len(base)].lower() != base.lower():
            raise ValueError(f"{url} is not on {base}")
        return url[len(base) :].strip("/").replace("/", "\\")


def url_for(host: str, share: str, path: str = "", port: int | None = None) -> str:
    """The smb:// root for NAS settings (host, share, path inside the share, port)."""
    inner = "/".join(p for p in path.replace("\\", "/").split("/") if p)
    return SmbLocation(bare_host(host), port or DEFAULT_PORT, share.strip("/\\ "), inner).url


def unc_host(host: str) -> str:
    """The host as a Windows UNC path writes it: an IPv6 address as its ipv6-literal.net name."""
    if ":" not in host:
        return host
    return host.replace(":", "-").replace("%", "s") + ".ipv6-literal.net"


def _next_step(loc: SmbLocation) -> str:
    """The advice to map the share and index the drive, quoted so names with spaces paste into a prompt,
    and keeping the folder inside the share."""
    unc = f"\\\\{unc_host(loc.host)}\\{loc.share}"
    drive = "Z:\\" + loc.path.replace("/", "\\")
    return f'Or map the share in Windows (net use Z: "{unc}") and index the drive: pacsindex index "{drive}"'
