"""The viewer's settings, from a settings file to their effect: how many processes draw images and how
many megabytes of thumbnails are kept; bad values are one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsindex.config.settings import load
from pacsindex.errors import ConfigError
from pacsindex.web import create_app


def test_render_workers_and_thumbnail_cache_mb_from_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "pacsindex.toml"
    config.write_text(f"db = '{tmp_path / 'pacsindex.db'}'\nrender_workers = 3\nthumbnail_cache_mb = 5\n")
    settings = load(config, environ={})
    app = create_app(settings)
    viewing = app.state.viewing
    assert viewing.renderer.workers == 3 and viewing.renderer.at_once == 6
    assert viewing.thumbnails.max_bytes == 5 << 20
    assert viewing.thumbnails.folder == tmp_path / "thumbnails"  # the data directory, not the archive
    viewing.renderer.shutdown()
    env = load(None, environ={"PACSINDEX_RENDER_WORKERS": "1", "PACSINDEX_THUMBNAIL_CACHE_MB": "1"})
    assert (env.render_workers, env.thumbnail_cache_mb) == (1, 1)


@pytest.mark.parametrize("line", ["render_workers = 0", "thumbnail_cache_mb = 0", "render_workers = 'many'"])
def test_bad_values_are_refused(tmp_path: Path, line: str) -> None:
    config = tmp_path / "pacsindex.toml"
    config.write_text(line + "\n")
    with pytest.raises(ConfigError):
        load(config, environ={})
