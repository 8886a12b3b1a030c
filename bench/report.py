"""Markdown tables of the latest benchmark figures (bench/out/*.json), to paste into docs/benchmarks.md.

    python -m bench.report

Only prints; a benchmark whose JSON is missing is skipped.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"


def machine(**more: Any) -> dict[str, Any]:
    """The "machine" block of a benchmark's figures: CPUs, Python, platform, and `more` (load averages)."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **more,
    }


def write_figures(out: Path, report: dict[str, Any], note: str = "") -> None:
    """A benchmark's figures as JSON in `out` (bench/out/NAME.json), and where they went."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {out}{note}")


def _load(name: str) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def scale(d: dict[str, Any]) -> str:
    rows = [
        [
            f"{r['files']:,}",
            f"{r['first']['series']:,}",
            f"{r['raw']['files_per_s']:,.0f}",
            f"{r['first']['seconds']:,.1f} s",
            f"{r['first']['files_per_s']:,.0f}",
            f"{r['first']['peak_rss_mb']:.0f} MB",
            f"{r['rescan']['seconds']:.1f} s",
            f"{r['rescan_speedup']:.1f}x",
            f"{r['db_bytes'] / 2**20:.0f} MiB",
            f"{r['db_bytes_per_file']:.0f} B",
        ]
        for r in d["sizes"]
    ]
    header = [
        "files",
        "series",
        "baseline raw files/s",
        "first index",
        "files/s",
        "peak RSS",
        "re-scan",
        "re-scan speed-up",
        "index",
        "index/file",
    ]
    out = [_table(header, rows)]
    for r in d["sizes"]:
        lines = []
        for label, s in r["search_summary_ms"].items():
            a = r.get("api_summary_ms", {}).get(label, {})
            nan = float("nan")
            hits = f"{r.get('api_hits', {}).get(label, '')}"
            lines.append(
                [
                    label,
                    hits,
                    f"{s['p50']:.1f}",
                    f"{s['p95']:.1f}",
                    f"{a.get('p50', nan):.1f}",
                    f"{a.get('p95', nan):.1f}",
                    f"{a.get('max', nan):.1f}",
                ]
            )
        out.append(f"\n{r['files']:,} files, {r['first']['series']:,} series:\n")
        header = [
            "query",
            "hits",
            "in-process p50 ms",
            "in-process p95 ms",
            "API p50 ms",
            "API p95 ms",
            "API max ms",
        ]
        out.append(_table(header, lines))
    return "\n".join(out)


def status(d: dict[str, Any]) -> str:
    rows = []
    keys = (
        ("status, idle (baseline)", "baseline_idle"),
        ("status, while indexing", "while_indexing"),
        ("sign-in, idle (baseline)", "signin_idle"),
        ("sign-in, while indexing", "signin_while_indexing"),
    )
    for label, key in keys:
        s = d[key]
        rows.append([label, str(s["requests"]), *(f"{s[k]:.1f}" for k in ("p50_ms", "p95_ms", "max_ms"))])
    return _table(["request", "n", "p50 ms", "p95 ms", "max ms"], rows) + (
        f"\n\n{d['files']:,} files indexed in {d['run_seconds']} s ({d['run_files_per_s']} files/s); "
        f"server from {d.get('server_src')}"
    )


def main() -> int:
    for name, fmt in (("bench_scale", scale), ("bench_status", status)):
        d = _load(name)
        if d is not None:
            print(f"## {name}\n\n{fmt(d)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
