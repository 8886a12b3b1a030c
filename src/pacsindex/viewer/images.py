"""Which images a series holds and where they live, read from the index: a series' images in viewing
order, one image by its id, the series of a study (the viewer's strip), and the representative middle
image a thumbnail shows. No web framework here; the caller opens the index and checks who may see what.

Images are ordered by InstanceNumber (then by path), which scanners number along the slices; the slice
position itself is read from each file when it is drawn.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from pacsindex.errors import NotFound

__all__ = ["Image", "image", "middle_image", "series_images", "study_series"]

_FULL_PATH = "d.path || d.sep || f.name"


@dataclass(frozen=True, slots=True)
class Image:
    """One file of a series: `id` is the index's file id (what the viewer's URLs name)."""

    id: int
    SeriesKey: str
    path: str
    InstanceNumber: int | None
    SOPInstanceUID: str | None
    size: int
    mtime_ns: int


_SELECT = f"""SELECT f.id, s.SeriesKey, {_FULL_PATH} AS path, f.InstanceNumber, f.SOPInstanceUID,
                     f.size, f.mtime_ns
              FROM files f JOIN dirs d ON d.id = f.dir_id JOIN series s ON s.id = f.series_id"""


def _image(row: sqlite3.Row) -> Image:
    return Image(
        row["id"],
        row["SeriesKey"],
        row["path"],
        row["InstanceNumber"],
        row["SOPInstanceUID"],
        row["size"],
        row["mtime_ns"],
    )


def series_images(conn: sqlite3.Connection, key: str) -> list[Image]:
    """The series' DICOM files in viewing order; NotFound when the index has no such series."""
    rows = conn.execute(
        _SELECT
        + """ WHERE s.SeriesKey = ? AND f.status = 'dicom'
                      ORDER BY f.InstanceNumber IS NULL, f.InstanceNumber, path""",
        (key,),
    ).fetchall()
    if not rows:
        if conn.execute("SELECT 1 FROM series WHERE SeriesKey = ?", (key,)).fetchone() is None:
            raise NotFound("no series with that SeriesKey (the index may have changed: search again)")
    return [_image(r) for r in rows]


def image(conn: sqlite3.Connection, image_id: int) -> Image:
    row = conn.execute(_SELECT + " WHERE f.id = ? AND f.status = 'dicom'", (image_id,)).fetchone()
    if row is None:
        raise NotFound("no image with that id (the index may have changed: open the series again)")
    return _image(row)


def middle_image(conn: sqlite3.Connection, key: str) -> Image | None:
    """The image in the middle of the series (what its thumbnail shows); None for a series of no images."""
    images = series_images(conn, key)
    return images[len(images) // 2] if images else None


def study_series(conn: sqlite3.Connection, key: str) -> list[dict[str, Any]]:
    """Every series of the study that series `key` belongs to, by series number."""
    rows = conn.execute(
        """SELECT s.SeriesKey, s.SeriesNumber, s.SeriesDescription, s.Modality, s.file_count
           FROM series s WHERE s.study_id = (SELECT study_id FROM series WHERE SeriesKey = ?)
           ORDER BY s.SeriesNumber IS NULL, s.SeriesNumber, s.id""",
        (key,),
    ).fetchall()
    return [{k: r[k] for k in r.keys()} for r in rows]
