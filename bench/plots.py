"""PNG plots of the benchmark figures for docs/benchmarks.md (matplotlib, no display needed).

Each function takes the JSON a benchmark writes to bench/out/ (so `--plot-only` can redraw from it) and the
folder the images go to (docs/img/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scale_plots(results: dict[str, Any], out: Path) -> None:
    """throughput.png (files/s against tree size), memory.png (RSS over time while indexing) and
    search_latency.png (per query at the largest tree: in-process and through the API)."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    rows = results["sizes"]
    sizes = [r["files"] for r in rows]

    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(sizes, [r["first"]["files_per_s"] for r in rows], "o-", label="first index (pacsindex index)")
    ax.plot(sizes, [r["raw"]["files_per_s"] for r in rows], "s--", label="baseline: open, read 16 KiB, close")
    rescan = [r["first"]["files"] / r["rescan"]["seconds"] for r in rows]
    ax.plot(sizes, rescan, "^:", label="unchanged re-scan")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("files in tree")
    ax.set_ylabel("files/s")
    ax.set_title("Throughput against tree size")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for r in rows:
        mem = r["first"]["memory"]
        ax.plot([t for t, _ in mem], [m for _, m in mem], label=f"first index, {r['files']:,} files")
    ax.axhline(500, color="red", linestyle=":", label="500 MB target")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS of pacsindex + workers (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title("Memory while indexing")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "memory.png", dpi=100)
    plt.close(fig)

    biggest = rows[-1]
    labels = list(biggest["search_ms"])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    inproc = [biggest["search_ms"][k] for k in labels]
    pos = list(range(1, len(labels) + 1))
    box = ax.boxplot(inproc, positions=[p - 0.18 for p in pos], widths=0.3, patch_artist=True)
    for patch in box["boxes"]:
        patch.set_facecolor("#c6dbef")
    handles = [box["boxes"][0]]
    names = ["in-process search() (baseline)"]
    if "api_ms" in biggest:
        api = [biggest["api_ms"][k] for k in labels]
        abox = ax.boxplot(api, positions=[p + 0.18 for p in pos], widths=0.3, patch_artist=True)
        for patch in abox["boxes"]:
            patch.set_facecolor("#fdae6b")
        handles.append(abox["boxes"][0])
        names.append("GET /api/search over HTTP")
    ax.axhline(100, color="red", linestyle=":")
    ax.set_xticks(pos, labels, fontsize=8)
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title(
        f"Search latency at {biggest['files']:,} files / {biggest['first']['series']:,} series "
        "(red: 100 ms p95 target)",
        fontsize=10,
    )
    ax.legend(handles, names, fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "search_latency.png", dpi=100)
    plt.close(fig)


def status_plot(result: dict[str, Any], out: Path, before: dict[str, Any] | None = None) -> None:
    """status_latency.png: GET /api/index/status and POST /auth/signin, idle and while indexing; with
    `before` (a run of an older engine), its sign-ins while indexing too."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    samples = dict(result["samples_ms"])
    if before is not None:
        samples["sign-in while indexing, engine before"] = before["samples_ms"]["sign-in while indexing"]
    order = (
        "status idle",
        "status while indexing",
        "sign-in idle",
        "sign-in while indexing",
        "sign-in while indexing, engine before",
    )
    labels = [k for k in order if samples.get(k)]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([samples[k] for k in labels], showfliers=True)
    ticks = [k.replace(" while", "\nwhile").replace(", ", ",\n") for k in labels]
    ax.set_xticks(range(1, len(labels) + 1), ticks, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title(f"Web requests while indexing {result['files']:,} files (same server)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "status_latency.png", dpi=100)
    plt.close(fig)
