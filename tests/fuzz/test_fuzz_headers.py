"""Fuzzed headers never crash or hang a run (issue 14, point 4). Real DICOM headers (tests/fuzz/mutate.py)
with mutated lengths, VRs, sequences, undefined lengths, truncation, huge values, wrong character sets and
deflate go to the header reader and to whole indexing runs: every file ends as dicom, non_dicom or error
with a reason, and the run completes. A short, deterministic fuzz runs in `make test`; the long one is
marked slow (`make bench`). Every input that ever crashed the reader is kept in tests/data/fuzz/."""

from __future__ import annotations

import io
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutate import mutate, seeds

from pacsindex.dicom.headers import FileResult, read_header
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on odd values: expected here

REGRESSIONS = Path(__file__).resolve().parent.parent / "data" / "fuzz"
SEEDS = seeds()
STATUSES = {"dicom", "non_dicom", "error"}


def read_bytes(data: bytes, name: str = "IM0001.dcm") -> FileResult:
    return read_header(name, lambda _path: io.BytesIO(data), len(data), name)


def check(result: FileResult) -> None:
    assert result.status in STATUSES
    if result.status == "dicom":
        r = result.record
        assert r is not None and (r.SOPInstanceUID or r.SeriesInstanceUID or r.StudyInstanceUID)
    else:
        assert result.reason and len(result.reason) <= 500


def fuzz_reader(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS), label="seed")
    rnd = data.draw(st.randoms(use_true_random=False), label="mutations")
    check(read_bytes(mutate(seed, rnd)))


FUZZ = settings(derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@settings(FUZZ, max_examples=400)
@given(st.data())
def test_mutated_headers_are_read_or_refused_with_a_reason(data: st.DataObject) -> None:
    fuzz_reader(data)


@pytest.mark.slow
@settings(FUZZ, max_examples=20000)
@given(st.data())
def test_mutated_headers_long_fuzz(data: st.DataObject) -> None:
    fuzz_reader(data)


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.dcm")), ids=lambda p: p.name)
def test_inputs_that_once_crashed_the_reader(path: Path) -> None:
    check(read_bytes(path.read_bytes()))


def corpus(root: Path, count: int, seed: int) -> int:
    rnd = random.Random(seed)
    root.mkdir(parents=True)
    for i in range(count):
        folder = root / f"F{i % 7}"
        folder.mkdir(exist_ok=True)
        (folder / f"IM{i:05d}.dcm").write_bytes(mutate(rnd.choice(SEEDS), rnd))
    for i, path in enumerate(sorted(REGRESSIONS.glob("*.dcm"))):
        (root / f"regression{i}.dcm").write_bytes(path.read_bytes())
    return count + len(list(REGRESSIONS.glob("*.dcm")))


def run_corpus(tmp_path: Path, count: int, seed: int) -> None:
    files = corpus(tmp_path / "archive", count, seed)
    db = tmp_path / "index.db"
    result = run_index(db, [LocalTree(str(tmp_path / "archive"))], ScanOptions(workers=2, file_seconds=20))
    assert result.state == "completed" and result.files_processed == files
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT status, reason FROM files").fetchall()
    finally:
        conn.close()
    assert len(rows) == files
    for status, reason in rows:
        assert status in STATUSES and (status == "dicom" or reason)
    assert result.errors + result.non_dicom == sum(1 for s, _ in rows if s != "dicom")


def test_a_run_over_fuzzed_files_completes_with_a_status_for_each(tmp_path: Path) -> None:
    run_corpus(tmp_path, 150, seed=14)


@pytest.mark.slow
def test_a_run_over_many_fuzzed_files(tmp_path: Path) -> None:
    run_corpus(tmp_path, 3000, seed=1414)
