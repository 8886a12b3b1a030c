"""Debian's Chromium, driven by Playwright, for the UI tests: the flags it runs with, where screenshots go,
and the module-scoped "browser" fixture (import `browser_fixture` where it is used, as with Samba)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


def doc_screenshot(page: Any, name: str, **options: Any) -> None:
    """A screenshot for the README: always in test-artifacts/, and into docs/img/ only when
    PACSINDEX_DOC_SCREENSHOTS=1 asks for it, so `make test` leaves the work tree as it found it."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **options)
    if os.environ.get("PACSINDEX_DOC_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / name), **options)


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/system-packages.sh` (make test does)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()
