"""The nightly full pass (retry_errors) reads again files that failed before though they did not change
(a NAS hiccup while reading them); an ordinary incremental pass leaves them alone."""

from __future__ import annotations

from pathlib import Path

from conftest import write_dicom
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for


def test_only_the_full_pass_retries_files_that_failed(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    write_dicom(root / "IM1.dcm", SeriesInstanceUID="1.2.1")
    (root / "cut.dcm").write_bytes((root / "IM1.dcm").read_bytes()[:300])
    db = tmp_path / "i.db"
    first = run_index(db, [source_for(str(root))], ScanOptions(workers=1))
    assert (first.files_read, first.errors) == (2, 1)
    again = run_index(db, [source_for(str(root))], ScanOptions(workers=1))
    assert (again.files_read, again.files_unchanged, again.errors) == (0, 2, 1)
    full = run_index(db, [source_for(str(root))], ScanOptions(workers=1, retry_errors=True))
    assert (full.files_read, full.files_unchanged, full.errors) == (1, 1, 1)
