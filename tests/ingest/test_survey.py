"""The survey of a first index: one file of every new folder is read first, so every series is searchable
(and marked as still being filled) before the other files are read; the finished index is the same as one
made without the survey, with or without worker processes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import IO

import pytest

from pacsindex.index import store
from pacsindex.index.search import search
from pacsindex.ingest.scan import Run, ScanOptions
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalReader, LocalTree, Reader


def visible(db: Path) -> dict[str, set[tuple[object, ...]]]:
    """Everything a user can see: each file with what it was read as, each series with its study and
    patient as the series page shows them, and every search result."""
    with store.reading(db) as conn:
        conn.row_factory = sqlite3.Row
        files = conn.execute(
            "SELECT d.path || d.sep || f.name, f.size, f.mtime_ns, f.status, f.reason, f.SOPInstanceUID,"
            " f.SOPClassUID, f.InstanceNumber, f.TransferSyntaxUID, s.SeriesKey"
            " FROM files f JOIN dirs d ON d.id = f.dir_id LEFT JOIN series s ON s.id = f.series_id"
        )
        keys = [r[0] for r in conn.execute("SELECT SeriesKey FROM series")]
        details = [store.get_series(conn, key) for key in keys]
        return {
            "files": {tuple(r) for r in files},
            "series": {tuple((k, v) for k, v in d.items() if k != "series_id") for d in details if d},
            "search": {tuple(sorted(r.items())) for r in search(conn, "", limit=1000)},
            "problems": {tuple(r) for r in conn.execute("SELECT path, reason FROM errors")},
        }


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("survey") / "archive"
    write_sample(root, patients=8, files=500)
    return root


def leaf_folders(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_dir() and not any(c.is_dir() for c in p.iterdir())]


class WatchedTree(LocalTree):
    """A local tree whose reader looks at the index when the survey ends: the moment the run opens a second
    file of a folder, every series must already be searchable and marked as being filled."""

    def __init__(self, root: str, db: Path) -> None:
        super().__init__(root)
        self.db = db
        self.seen: list[dict[str, object]] | None = None
        self.opened_folders: set[str] = set()

    def reader(self) -> Reader:
        tree = self

        class Watching(LocalReader):
            def open(self, path: str) -> IO[bytes]:
                folder = str(Path(path).parent)
                if folder in tree.opened_folders and tree.seen is None:
                    with store.reading(tree.db) as conn:
                        tree.seen = search(conn, "", limit=1000)
                tree.opened_folders.add(folder)
                return super().open(path)

        return Watching()


def test_every_series_is_searchable_before_the_rest_of_its_files_are_read(
    archive: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.db"
    Run(plain, [LocalTree(str(archive))], ScanOptions(workers=1, survey=False)).run()
    with store.reading(plain) as conn:
        final = {r["SeriesKey"]: r["file_count"] for r in search(conn, "", limit=1000)}
    assert len(final) > 10

    db = tmp_path / "survey.db"
    tree = WatchedTree(str(archive), db)
    progress = Run(db, [tree], ScanOptions(workers=1)).run()
    assert progress.state == "completed" and progress.errors == 0

    assert tree.seen is not None, "no folder's second file was read"
    early = {r["SeriesKey"]: r for r in tree.seen}
    assert set(early) == set(final)  # every series found, though most of their files are not read yet
    unread = sum(final.values()) - sum(r["file_count"] for r in early.values())
    assert unread > len(final)
    for key, row in early.items():
        assert row["filling"] == (row["file_count"] < final[key])
    with store.reading(db) as conn:
        assert not any(r["filling"] for r in search(conn, "", limit=1000))  # all filled at the end


# Two workers take the waiting files while the walk goes on; a small `survey_files` makes later folders be
# read whole (memory stays bounded) part-way through the walk.
@pytest.mark.parametrize(("workers", "survey_files"), [(1, 200_000), (2, 200_000), (1, 20)])
def test_the_finished_index_is_the_same_with_or_without_the_survey(
    archive: Path, tmp_path: Path, workers: int, survey_files: int
) -> None:
    plain, surveyed = tmp_path / "plain.db", tmp_path / "surveyed.db"
    options = ScanOptions(workers=workers, pool_after_seconds=0.0, job_size=8, survey_files=survey_files)
    first = Run(plain, [LocalTree(str(archive))], ScanOptions(workers=1, survey=False)).run()
    second = Run(surveyed, [LocalTree(str(archive))], options).run()
    assert first.files_read == second.files_read == first.files_processed
    assert first.series_count == second.series_count
    seen_plain, seen_surveyed = visible(plain), visible(surveyed)
    for what in seen_plain:
        assert seen_surveyed[what] == seen_plain[what], what


def test_a_run_stopped_during_the_survey_is_finished_by_the_next(archive: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.db"
    Run(plain, [LocalTree(str(archive))], ScanOptions(workers=1, survey=False)).run()
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
    with store.reading(db) as conn:
        assert any(r["filling"] for r in search(conn, "", limit=1000))  # said so while it was stopped

    resumed = Run(db, [LocalTree(str(archive))], ScanOptions(workers=1)).run()
    assert resumed.state == "completed" and resumed.files_read > 0
    assert visible(db) == visible(plain)  # every waiting file read, and no series left filling
