"""What every `pacsindex` command shares: the common options, argument types, settings and JSON output."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, timezone
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from pacsindex.config import settings as config
from pacsindex.index.sa.samatch import load_tables


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="index database (default ./pacsindex.db, or PACSINDEX_DB)")
    p.add_argument("--config", help="TOML settings file (or PACSINDEX_CONFIG)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def settings_from(args: argparse.Namespace) -> config.Settings:
    """The settings of this command: file, environment, then its options. A bad `[medical_aids]` or
    `[hospitals]` section is refused here, before anything runs (ConfigError: one line, exit 2)."""
    settings = config.load(getattr(args, "config", None))
    load_tables(settings.extra)
    return settings.with_overrides(db=getattr(args, "db", None))


def print_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(data, out, ensure_ascii=False, indent=2)
    out.write("\n")


def local_time(stored: str | None, tz: ZoneInfo, empty: str = "") -> str:
    """A stored time (ISO 8601, UTC) as the practice reads it: in its own zone, to the minute, with the
    zone's abbreviation ("2026-03-02 14:05 SAST")."""
    if not stored:
        return empty
    try:
        ts = datetime.fromisoformat(stored)
    except ValueError:
        return stored
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def os_user() -> str:
    """Who runs the command, for the audit log (`cli:NAME`)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
