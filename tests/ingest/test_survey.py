"""The survey of a first index: one file of every new folder is read first, so every series is searchable
(and marked as still being indexed) before the other files of its folder are read; the finished index is
the same as one made without the survey, with one or two workers, locally and over SMB; a run stopped
during the survey leaves its series marked, and the next run completes them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Any

import pytest

from pacsindex.index import store
from pacsindex.index.search import search
from pacsindex.ingest.progress import Progress
from pacsindex.ingest.scan import Run, ScanOptions
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalReader, LocalTree, Reader, Source, source_for
from pacsindex.sources.smb import reader as smb
from samba_server import SambaServer, samba_fixture  # noqa: F401  (the "samba" fixture)
from support_wait import wait_until

# Every row of the index a user can reach, with row ids and run ids replaced by what they point at.
_TABLES = ("patients", "studies", "series", "files", "dirs", "errors")
_REFS = {
    "patient_id": ("patients", "patient_key"),
    "study_id": ("studies", "study_key"),
    "series_id": ("series", "SeriesKey"),
    "dir_id": ("dirs", "path"),
}
_NOT_COMPARED = {"id", "run_id", "at"}  # row numbers, which run wrote a row, when an error was seen


def index_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with store.reading(db) as conn:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in _TABLES:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            select = [
                f"(SELECT r.{_REFS[c][1]} FROM {_REFS[c][0]} r WHERE r.id = x.{c})"
                if c in _REFS
                else f"x.{c}"
                for c in columns
                if c not in _NOT_COMPARED
            ]
            rows = conn.execute(f"SELECT {', '.join(select)} FROM {table} x")
            out[table] = sorted((tuple(r) for r in rows), key=repr)
        return out


def assert_same_index(db: Path, baseline: Path) -> None:
    mine, theirs = index_rows(db), index_rows(baseline)
    for table in _TABLES:
        assert len(mine[table]) == len(theirs[table]), table
        assert mine[table] == theirs[table], table


def searchable(db: Path) -> dict[str, dict[str, Any]]:
    with store.reading(db) as conn:
        return {r["SeriesKey"]: r for r in search(conn, "", limit=1000)}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("survey") / "archive"
    write_sample(root, patients=8, files=500)
    return root


@pytest.fixture(scope="module")
def plain(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same archive indexed without the survey: what every surveyed index must end up as."""
    db = tmp_path_factory.mktemp("plain") / "plain.db"
    done = Run(db, [LocalTree(str(archive))], ScanOptions(workers=1, survey=False)).run()
    assert done.state == "completed" and done.errors == 0
    return db


class SecondFileGate(LocalTree):
    """A local tree whose reader, the first time it opens a second file of any folder, holds that read
    until `gate` is set (`at_gate` says it is there). With one worker the run reads in its own thread."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.at_gate = threading.Event()
        self.opened: set[str] = set()

    def reader(self) -> Reader:
        tree = self

        class Gated(LocalReader):
            def open(self, path: str) -> IO[bytes]:
                folder = str(Path(path).parent)
                if folder in tree.opened and not tree.at_gate.is_set():
                    tree.at_gate.set()
                    tree.gate.wait(60)
                tree.opened.add(folder)
                return super().open(path)

        return Gated()


def test_every_series_is_searchable_before_the_rest_of_its_files_are_read(
    archive: Path, plain: Path, tmp_path: Path
) -> None:
    final = {k: r["file_count"] for k, r in searchable(plain).items()}
    assert len(final) > 10
    db = tmp_path / "survey.db"
    tree = SecondFileGate(str(archive))
    result: list[Progress] = []
    run = threading.Thread(target=lambda: result.append(Run(db, [tree], ScanOptions(workers=1)).run()))
    run.start()
    try:
        wait_until(tree.at_gate.is_set, what="a second file of a folder is opened")
        early = searchable(db)
    finally:
        tree.gate.set()
        run.join(60)
    # Every series was found while most files were still unread; those missing files say so.
    assert set(early) == set(final)
    assert sum(r["file_count"] for r in early.values()) < sum(final.values()) - len(final)
    for key, row in early.items():
        assert row["filling"] == (row["file_count"] < final[key]), key
    assert any(r["filling"] for r in early.values())
    assert result and result[0].state == "completed" and result[0].errors == 0
    assert not any(r["filling"] for r in searchable(db).values())  # all filled at the end
    assert_same_index(db, plain)


# Two workers take the waiting files while the walk goes on; a small `survey_files` makes later folders be
# read whole (memory stays bounded) part-way through the walk.
@pytest.mark.parametrize(("workers", "survey_files"), [(1, 200_000), (2, 200_000), (1, 20), (2, 20)])
def test_the_finished_index_is_the_same_with_or_without_the_survey(
    archive: Path, plain: Path, tmp_path: Path, workers: int, survey_files: int
) -> None:
    db = tmp_path / "surveyed.db"
    options = ScanOptions(workers=workers, job_size=8, survey_files=survey_files)
    done = Run(db, [LocalTree(str(archive))], options).run()
    assert done.state == "completed" and done.errors == 0
    assert done.files_read == done.files_processed == done.enumerated_files
    assert_same_index(db, plain)


@pytest.mark.samba
@pytest.mark.parametrize("workers", [1, 2])
def test_over_smb_the_finished_index_is_the_same_with_or_without_the_survey(
    samba: SambaServer, tmp_path: Path, workers: int
) -> None:
    tree = samba.shares["archive"] / "survey"
    if not tree.exists():
        write_sample(tree, patients=4, files=200)

    def source() -> Source:
        return source_for(samba.url("archive", "survey"), smb.SmbCredentials(samba.user, samba.password))

    smb.close_connections()
    try:
        without = Run(tmp_path / "plain.db", [source()], ScanOptions(workers=1, survey=False)).run()
        surveyed = Run(tmp_path / "survey.db", [source()], ScanOptions(workers=workers, job_size=8)).run()
    finally:
        smb.close_connections()
    assert without.state == surveyed.state == "completed" and surveyed.errors == 0
    assert surveyed.files_read == without.files_read > 200  # 200 DICOM files and a readme
    assert_same_index(tmp_path / "survey.db", tmp_path / "plain.db")


def test_a_run_stopped_during_the_survey_is_finished_by_the_next(
    archive: Path, plain: Path, tmp_path: Path
) -> None:
    db = tmp_path / "stopped.db"
    stop = threading.Event()

    class Stopping(LocalTree):
        """Asks the run to stop when it opens a second file of a folder: the survey's first half is done."""

        def reader(self) -> Reader:
            opened: set[str] = set()

            class StopReader(LocalReader):
                def open(self, path: str) -> IO[bytes]:
                    folder = str(Path(path).parent)
                    if folder in opened:
                        stop.set()
                    opened.add(folder)
                    return super().open(path)

            return StopReader()

    stopped = Run(db, [Stopping(str(archive))], ScanOptions(workers=1, job_size=4), cancel=stop).run()
    assert stopped.state == "cancelled"
    filling = [k for k, r in searchable(db).items() if r["filling"]]
    assert filling and stopped.series_filling == len(filling)  # said so while it was stopped, and counted

    resumed = Run(db, [LocalTree(str(archive))], ScanOptions(workers=1)).run()
    assert resumed.state == "completed" and resumed.files_read > 0 and resumed.errors == 0
    assert not any(r["filling"] for r in searchable(db).values()) and resumed.series_filling == 0
    assert_same_index(db, plain)  # every waiting file read, and no series left being indexed


def test_no_survey_reads_each_folder_whole(archive: Path, tmp_path: Path) -> None:
    """`--no-survey` (ScanOptions(survey=False)): a folder's files are read as it is found, one after the
    other."""
    db = tmp_path / "plain.db"
    order: list[str] = []

    class Recording(LocalTree):
        def reader(self) -> Reader:
            class Rec(LocalReader):
                def open(self, path: str) -> IO[bytes]:
                    order.append(str(Path(path).parent))
                    return super().open(path)

            return Rec()

    Run(db, [Recording(str(archive))], ScanOptions(workers=1, survey=False)).run()
    folders = [f for i, f in enumerate(order) if i == 0 or order[i - 1] != f]
    assert len(folders) == len(set(folders))  # never back to a folder once left
