"""What a DICOMDIR saves on a CD/DVD export: files opened and seconds, with and without the DICOMDIR, on
the same export (a real pydicom FileSet: the DICOMDIR carries only the keys the standard requires).

With a DICOMDIR pacsindex opens the DICOMDIR and one file per series (for the fields the records lack) and
indexes the rest from the records; without it, every file is opened. Both runs index into a fresh database
as subprocesses (`pacsindex index EXPORT --json`), alternating round by round, after one untimed read of
every file puts the export in the page cache. The figures are a measurement, never pass/fail.

    python -m bench.bench_dicomdir [--series 20] [--per-series 100] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
CACHE = Path.home() / ".cache" / "pacsindex-bench"


def make_export(root: Path, series: int, per_series: int) -> Path:
    """A CD export as modalities write it: DICOMDIR + PT*/ST*/SE*/IM* files, 64x64 16-bit CT slices."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.fileset import FileSet
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    from pacsindex.sources.dicomdir import release

    if (root / "DICOMDIR").exists():
        return root
    staging = root.with_name(root.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    fs = FileSet()
    study = generate_uid()
    for s in range(series):
        series_uid = generate_uid()
        for i in range(per_series):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
            ds.PatientName, ds.PatientID = "MÜLLER^HANS", "8001015009087"
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.PatientBirthDate, ds.PatientSex = "19800101", "M"
            ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study, "20240115", "101500", "1"
            ds.AccessionNumber, ds.StudyDescription = "ACC1", "CT KNEE"
            ds.InstitutionName, ds.ReferringPhysicianName = "Netcare Milpark Hospital", "DR^NAIDOO"
            ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = series_uid, s + 1, "CT"
            ds.SeriesDescription = f"AX {s + 1} FATSAT"
            ds.InstanceNumber = i + 1
            ds.Rows = ds.Columns = 64
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.PixelData = bytes(64 * 64 * 2)
            fs.add(ds)
    fs.write(staging)
    release(fs)
    staging.rename(root)
    return root


def index_once(root: Path, workdir: Path, label: str, round_no: int) -> dict[str, Any]:
    db = workdir / f"{label}-{round_no}.db"
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pacsindex", "index", str(root), "--db", str(db), "--json", "--no-progress"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    summary = json.loads(out.stdout)
    db.unlink()
    return {
        "label": label,
        "round": round_no,
        "seconds": seconds,
        "files_opened": summary["files_read"],
        "files_from_records": summary.get("files_from_records", 0),
        "files": summary["files_processed"],
        "series": summary["series_count"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_dicomdir", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--per-series", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_dicomdir.json")
    args = parser.parse_args(argv)

    export = make_export(CACHE / f"cd-{args.series}x{args.per_series}", args.series, args.per_series)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pacsindex-dicomdir-") as tmp:
        workdir = Path(tmp)
        plain = workdir / "no-dicomdir"
        shutil.copytree(export, plain)
        (plain / "DICOMDIR").unlink()
        for path in (*export.rglob("*"), *plain.rglob("*")):  # the page cache, for both
            if path.is_file():
                path.read_bytes()
        for r in range(args.rounds):
            order = [("with DICOMDIR", export), ("without", plain)]
            for label, root in order if r % 2 == 0 else reversed(order):
                runs.append(index_once(root, workdir, label, r + 1))
                print(
                    f"round {r + 1}  {label:<14} {runs[-1]['seconds']:6.2f} s  "
                    f"opened {runs[-1]['files_opened']:>5} of {runs[-1]['files']} files",
                    flush=True,
                )
    summary: dict[str, Any] = {}
    for label in ("with DICOMDIR", "without"):
        mine = [r for r in runs if r["label"] == label]
        summary[label] = {
            "median_seconds": statistics.median(r["seconds"] for r in mine),
            "files_opened": mine[-1]["files_opened"],
            "files": mine[-1]["files"],
            "series": mine[-1]["series"],
        }
    ratio = summary["without"]["median_seconds"] / summary["with DICOMDIR"]["median_seconds"]
    print(f"\n{'':<14} {'median s':>9} {'opened':>7} {'files':>6}")
    for label, s in summary.items():
        print(f"{label:<14} {s['median_seconds']:9.2f} {s['files_opened']:7d} {s['files']:6d}")
    print(f"time without / with DICOMDIR: {ratio:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"series": args.series, "per_series": args.per_series, "runs": runs, "summary": summary,
              "ratio_without_over_with": ratio}  # fmt: skip
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
