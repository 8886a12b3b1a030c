"""Settings that admins change from the web page (the NAS connection, the Orthanc connection), kept in the
data directory: one JSON file per section, `<section>.json`, written atomically and readable by its owner
only, because the sections hold passwords.

These files are state, not configuration: the TOML file and the environment (pacsindex.config.settings)
stay the
place for what an installer sets; what an admin saves here takes effect without a restart. Passwords are
stored so that pacsindex can log in to the NAS or Orthanc for the user; they are never returned by the API
(`public()` drops them) and never logged.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pacsindex.errors import ConfigError

_SECTION = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def path_of(data_dir: Path, section: str) -> Path:
    if not _SECTION.match(section):
        raise ValueError(f"bad settings section name {section!r}")
    return data_dir / f"{section}.json"


def load(data_dir: Path, section: str) -> dict[str, Any]:
    """The saved values of one section; {} when nothing was saved yet. ConfigError if the file is damaged."""
    path = path_of(data_dir, section)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the saved {section} settings in {path}: {exc.strerror}") from exc
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"the saved {section} settings in {path} are damaged ({exc}); save them again from the admin page"
        ) from exc
    if not isinstance(values, dict):
        raise ConfigError(f"the saved {section} settings in {path} are not a JSON object")
    return values


def save(data_dir: Path, section: str, values: Mapping[str, Any]) -> Path:
    """Replace one section's file atomically: a reader sees the old file or the new one, never half of one.
    The file is created owner-only (0600) before anything is written to it."""
    path = path_of(data_dir, section)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{section}.", suffix=".tmp", dir=data_dir)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dict(values), out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # On Windows chmod only sets the read-only flag; there the data directory's ACL must keep other
    # accounts out (README, "Security").
    os.chmod(path, 0o600)
    return path


def public(values: Mapping[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """The values without the secrets, plus `<name>_set: bool` for each secret, for the API to show."""
    hidden = set(secrets)
    out = {k: v for k, v in values.items() if k not in hidden}
    for name in hidden:
        out[f"{name}_set"] = bool(values.get(name))
    return out
