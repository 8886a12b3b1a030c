"""Sources: local trees (symlink loops, unreadable folders) and file lists as Windows tools write them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pacsindex.errors import SourceError
from pacsindex.sources.files import DirListing, FileList, LocalTree, WalkError, read_list_lines, split_path


def _walk(source) -> tuple[list[DirListing], list[WalkError]]:
    listings, errors = [], []
    for item in source.walk(threading.Event()):
        (errors if isinstance(item, WalkError) else listings).append(item)
    return listings, errors


def _tree(root: Path, dirs: int = 30, files: int = 5) -> set[str]:
    paths = set()
    for d in range(dirs):
        folder = root / f"P{d % 5}" / f"S{d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            f = folder / f"IM{i}"
            f.write_bytes(b"x" * (i + 1))
            paths.add(str(f))
    return paths


def test_local_tree_lists_every_file_once_with_size(tmp_path: Path) -> None:
    expected = _tree(tmp_path / "root")
    listings, errors = _walk(LocalTree(str(tmp_path / "root"), listers=4))
    seen = [os.path.join(listing.path, e.name) for listing in listings for e in listing.entries]
    assert not errors
    assert sorted(seen) == sorted(expected)
    sizes = {e.name: e.size for listing in listings for e in listing.entries}
    assert sizes["IM4"] == 5
    assert all(listing.complete for listing in listings)


def test_symlink_loop_does_not_hang_and_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    expected = _tree(root, dirs=3, files=2)
    (root / "P0" / "loop").symlink_to(root, target_is_directory=True)
    (root / "P1" / "link.dcm").symlink_to(next(iter(expected)))
    listings, errors = _walk(LocalTree(str(root)))
    seen = {os.path.join(listing.path, e.name) for listing in listings for e in listing.entries}
    assert seen == expected


def test_directory_named_like_a_file_is_walked_not_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "x.dcm").mkdir(parents=True)
    (root / "x.dcm" / "IM1").write_bytes(b"1")
    listings, _ = _walk(LocalTree(str(root)))
    names = {(Path(listing.path).name, e.name) for listing in listings for e in listing.entries}
    assert names == {("x.dcm", "IM1")}


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="root not found"):
        LocalTree(str(tmp_path / "nope")).check()


def test_stopping_early_ends_the_listers(tmp_path: Path) -> None:
    _tree(tmp_path / "root", dirs=200, files=1)
    before = threading.active_count()
    walker = LocalTree(str(tmp_path / "root"), listers=4).walk(threading.Event())
    next(walker)
    walker.close()
    assert threading.active_count() <= before + 1  # the joiner thread may linger a moment; listers are gone


ROBOCOPY = (
    "\t\t\t\t\t  \\\\nas\\Image Archiving\\2019\\P1\\IM0001.dcm\r\n"
    "\t\t\t\t\t  \\\\nas\\Image Archiving\\2019\\P1\\IM0002\r\n"
    "\t\t\t\t\t  \\\\nas\\Image Archiving\\2019\\P2\\Müller Hans\\IM0001.dcm\r\n"
    "\r\n"
)
GET_CHILDITEM = (
    "Z:\\Image Archiving\\2019\\P1\\IM0001.dcm\r\n"
    "Z:\\Image Archiving\\2019\\P1\\IM0002\r\n"
    "Z:\\Image Archiving\\2019\\P2\\Müller Hans\\IM0001.dcm\r\n"
)


@pytest.mark.parametrize(
    "raw, expected_first",
    [
        (GET_CHILDITEM.encode("utf-16"), "Z:\\Image Archiving\\2019\\P1\\IM0001.dcm"),  # PowerShell 5 `>`
        (b"\xef\xbb\xbf" + GET_CHILDITEM.encode("utf-8"), "Z:\\Image Archiving\\2019\\P1\\IM0001.dcm"),
        (GET_CHILDITEM.replace("\r\n", "\n").encode("utf-8"), "Z:\\Image Archiving\\2019\\P1\\IM0001.dcm"),
        (ROBOCOPY.encode("cp1252"), "\\\\nas\\Image Archiving\\2019\\P1\\IM0001.dcm"),  # robocopy ANSI
        (ROBOCOPY.encode("utf-8"), "\\\\nas\\Image Archiving\\2019\\P1\\IM0001.dcm"),
    ],
    ids=["utf16-bom", "utf8-bom", "utf8-lf", "robocopy-ansi", "robocopy-utf8"],
)
def test_file_list_formats(tmp_path: Path, raw: bytes, expected_first: str) -> None:
    lst = tmp_path / "list.txt"
    lst.write_bytes(raw)
    lines = list(read_list_lines(str(lst)))
    assert len(lines) == 3
    assert lines[0] == expected_first
    assert lines[2].endswith("\\Müller Hans\\IM0001.dcm")


def test_file_list_skips_robocopy_chatter(tmp_path: Path) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text(
        "-------------------------------------------------------------------------------\n"
        "   ROBOCOPY     ::     Robust File Copy for Windows\n"
        "\t\t\t\t\t  \\\\nas\\share\\a\\IM1.dcm\n"
        "\t  3\t\\\\nas\\share\\a\\\n",
        encoding="utf-8",
    )
    assert list(read_list_lines(str(lst))) == ["\\\\nas\\share\\a\\IM1.dcm"]


def test_split_windows_and_posix_paths() -> None:
    assert split_path("Z:\\Image Archiving\\2019\\IM1") == ("Z:\\Image Archiving\\2019", "IM1")
    assert split_path("\\\\nas\\share\\a\\IM1.dcm") == ("\\\\nas\\share\\a", "IM1.dcm")
    assert split_path("/mnt/nas/a/IM1") == ("/mnt/nas/a", "IM1")


def test_file_list_source_stats_files_and_reports_missing_ones(tmp_path: Path) -> None:
    real = sorted(_tree(tmp_path / "root", dirs=2, files=3))
    lst = tmp_path / "list.txt"
    lst.write_text(
        "\n".join(["  " + real[0], *real[1:], str(tmp_path / "gone.dcm")]) + "\n", encoding="utf-16"
    )
    listings, errors = _walk(FileList(str(lst)))
    seen = sorted(os.path.join(listing.path, e.name) for listing in listings for e in listing.entries)
    assert seen == real
    assert [e.path for e in errors] == [str(tmp_path / "gone.dcm")]
    assert "not found" in errors[0].reason
    assert not any(listing.complete for listing in listings)


def test_file_list_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file list not found"):
        FileList(str(tmp_path / "none.txt")).check()
