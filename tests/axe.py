"""axe-core inside Playwright: `assert_accessible(page, "name")` checks the page as it is now against WCAG 2.1
A and AA (contrast, labels, names, structure) and fails on any serious or critical violation, listing them.
axe-core comes from npm into .test-tools/ (scripts/test-tools.sh, run by `make test`); the product never
loads it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parent.parent / ".test-tools" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _source() -> str:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `bash scripts/test-tools.sh` (make test does)")
    return AXE.read_text(encoding="utf-8")


def violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source())  # by the DevTools protocol, so the page's CSP does not block it
    found: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary),
                }));
        }""",
        TAGS,
    )
    return found


def assert_accessible(page: Any, name: str) -> None:
    found = violations(page)
    assert not found, f"{name}: " + "\n".join(
        f"{v['impact']} {v['id']}: {v['help']} {v['nodes']}" for v in found
    )
