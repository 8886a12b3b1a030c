"""Settings: file + environment, validated at start-up with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsindex.config import settings as config
from pacsindex.errors import ConfigError


def test_defaults() -> None:
    s = config.load(environ={})
    assert s.db == Path("pacsindex.db") and s.timezone == "Africa/Johannesburg" and s.workers == 0
    assert s.status_path == Path("index_status.json")


def test_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "pacsindex.toml"
    f.write_text(
        'db = "/data/idx.db"\nworkers = 3\ntimezone = "UTC"\n[shares]\nmax_hours = 72\n', encoding="utf-8"
    )
    s = config.load(f, environ={"PACSINDEX_WORKERS": "5"})
    assert s.db == Path("/data/idx.db") and s.workers == 5 and s.timezone == "UTC"
    assert s.extra["shares"]["max_hours"] == 72
    assert s.status_path == Path("/data/index_status.json")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PACSINDEX_TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
        ({"PACSINDEX_WORKERS": "many"}, "workers"),
        ({"PACSINDEX_WORKERS": "-1"}, "workers"),
        ({"PACSINDEX_PORT": "70000"}, "port"),
        ({"PACSINDEX_SECURE_COOKIES": "perhaps"}, "secure_cookies"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(environ=env)


def test_unknown_setting_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("colour = 'blue'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        config.load(f, environ={})
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "missing.toml", environ={})
