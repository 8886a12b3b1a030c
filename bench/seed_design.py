"""The seed design, re-implemented as the baseline every indexing benchmark is measured against.

The practice's first indexer (`build_index.py` in the seed documents) read a list of paths, read each file's
header with `pydicom.dcmread(path, stop_before_pixels=True)` in a `ThreadPoolExecutor` of 16 workers,
grouped the files in a dict by SeriesInstanceUID (falling back to StudyInstanceUID + SeriesNumber) under a
SeriesKey that is the SHA-1 hex of that basis, and dumped the series with their files as JSON (written to a
temporary file, then renamed). This module does exactly that and nothing more: the seed's periodic
`index.json` / `index_status.json` rewrites during the run are left out, which only makes the baseline
faster, never slower.

Run it as `python -m bench.seed_design LIST OUT [--workers N]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pydicom

log = logging.getLogger(__name__)

FIELDS = (
    "PatientName",
    "PatientID",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "SOPInstanceUID",
)
SERIES_FIELDS = FIELDS[:-1]


def _read_header(path: str) -> dict[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    record = {name: str(getattr(ds, name, "") or "") for name in FIELDS}
    record["path"] = path
    return record


def series_key(record: dict[str, str]) -> str:
    """SHA-1 hex of the SeriesInstanceUID, or of StudyInstanceUID + SeriesNumber when it is missing."""
    basis = record["SeriesInstanceUID"] or f"{record['StudyInstanceUID']}_{record['SeriesNumber']}"
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()


def run_seed_design(file_list: Path, out_json: Path, workers: int = 16) -> int:
    """Index the files named in `file_list` (one path a line) into `out_json`; return how many were read."""
    paths = [
        line.strip() for line in Path(file_list).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    series: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, str]] = []
    read = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_read_header, path): path for path in paths}
        for future in as_completed(futures):
            try:
                record = future.result()
            except Exception as exc:  # one bad file is recorded, as the seed did, and the run goes on
                errors.append({"path": futures[future], "error": repr(exc)})
                continue
            read += 1
            key = series_key(record)
            entry = series.get(key)
            if entry is None:
                entry = {"SeriesKey": key, **{name: record[name] for name in SERIES_FIELDS}, "files": []}
                series[key] = entry
            entry["files"].append({"path": record["path"], "SOPInstanceUID": record["SOPInstanceUID"]})
    out_json = Path(out_json)
    tmp = out_json.with_name(out_json.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(list(series.values()), fh, indent=2)
    os.replace(tmp, out_json)
    if errors:
        log.warning("%d of %d files could not be read", len(errors), len(paths))
    return read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seed_design", description=__doc__.splitlines()[0])
    parser.add_argument("file_list", type=Path, help="text file with one DICOM path per line")
    parser.add_argument("out_json", type=Path, help="where to write the series list as JSON")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    read = run_seed_design(args.file_list, args.out_json, workers=args.workers)
    seconds = time.perf_counter() - t0
    print(
        f"seed design: {read} files read in {seconds:.2f} s ({read / seconds:.0f} files/s)", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
