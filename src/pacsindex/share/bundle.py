"""What a share's zip holds, planned before the first byte is sent: a README.txt saying how to open it,
MANIFEST.txt (every file, and the ones that went missing since indexing), a DICOMDIR, and the files in
the PS3.11 general-purpose CD layout `DICOM/PA000001/ST000001/SE000001/IM000001` (8-character IDs: the
names are made here, never taken from the archive, so they are safe and unique). RadiAnt, Horos/OsiriX,
Weasis and MicroDicom open the unzipped folder, or its DICOMDIR, directly.

Sizes are found first (each file opened once, or for a de-identified share each header read and
de-identified once), so the zip's exact length is the Content-Length; the files themselves are read only
as the zip goes out (`zipwriter`), and any byte range of it can be sent on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

from pacsindex.share import dicomdir
from pacsindex.share.deid import Deidentifier, DeidFile, plan_in_worker
from pacsindex.share.download import exact_chunks, probe, safe_part, why
from pacsindex.share.zipwriter import Entry, ZipLayout
from pacsindex.sources.readers import CHUNK, ReaderFor, Readers

PlanMap = Callable[[Callable[[str], "DeidFile | str"], list[str]], Iterable["DeidFile | str"]]

__all__ = ["DICOMDIR", "MANIFEST", "README", "Member", "PlanMap", "ShareZip", "share_filename"]

README = "README.txt"
MANIFEST = "MANIFEST.txt"
DICOMDIR = "DICOMDIR"
_SERIES_FIELDS = ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber")
_STUDY_FIELDS = (
    "PatientID",
    "PatientName",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "StudyID",
    "AccessionNumber",
)


@dataclass(frozen=True, slots=True)
class Member:
    """One file: where it is in the zip and where it lives (the path is never shown to a recipient)."""

    n: int
    name: str  # path inside the zip
    file_id: tuple[str, ...]
    path: str
    size: int  # bytes the zip holds
    indexed_size: int
    values: Mapping[str, Any]  # the header values the DICOMDIR and MANIFEST show (de-identified ones if so)
    missing: str | None = None
    deid: DeidFile | None = field(default=None, repr=False)

    @property
    def changed(self) -> bool:
        return self.missing is None and self.deid is None and self.size != self.indexed_size


def share_filename(series: Sequence[Mapping[str, Any]], *, deidentified: bool = False) -> str:
    """The download's name: study date, modalities and series count; nothing that names the patient."""
    first = series[0] if series else {}
    modalities = "-".join(dict.fromkeys(safe_part(s.get("Modality"), "OT", 8) for s in series)) or "OT"
    date = "anon" if deidentified else safe_part(first.get("StudyDate"), "nodate", 8)
    count = (
        f"{len(series)}series" if len(series) != 1 else safe_part(first.get("SeriesDescription"), "series")
    )
    return f"{date}_{modalities[:40]}_{count}.zip"


class ShareZip:
    """The zip of a share's series, planned (every size known) but not yet read. `size` is exactly how
    many bytes `chunks()` gives."""

    def __init__(
        self,
        parts: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
        *,
        made_at: float,
        tz: tzinfo = timezone.utc,
        practice: str = "",
        deidentifier: Deidentifier | None = None,
        reader_for: ReaderFor | None = None,
        settings: Any = None,
        chunk: int = CHUNK,
        plan_map: PlanMap | None = None,
    ) -> None:
        self.chunk = chunk
        self.deid = deidentifier
        self._plan_map, self._reader_for, self._settings = plan_map, reader_for, settings
        self._readers = Readers(reader_for, settings)
        self.series = [dict(s) for s, _ in parts]
        self.filename = share_filename(self.series, deidentified=deidentifier is not None)
        self.members = self._plan(parts)
        made = datetime.fromtimestamp(made_at, tz)
        readme = self._readme(practice)
        manifest = self._manifest(made)
        listed = [m for m in self.members if m.missing is None and _in_dicomdir(m.values)]
        directory = dicomdir.build([dicomdir.Image(m.file_id, m.values) for m in listed])
        entries = [Entry.of(README, readme), Entry.of(MANIFEST, manifest), Entry.of(DICOMDIR, directory)]
        for m in self.members:
            if m.missing is None:
                entries.append(Entry(m.name, m.size, self._source(m)))
        self.layout = ZipLayout(entries, made.timetuple()[:6])
        self.size = self.layout.size
        self.manifest = manifest

    @property
    def included(self) -> list[Member]:
        return [m for m in self.members if m.missing is None]

    @property
    def missing(self) -> list[Member]:
        return [m for m in self.members if m.missing is not None]

    def chunks(
        self, start: int = 0, stop: int | None = None, crcs: MutableMapping[int, int] | None = None
    ) -> Iterator[bytes]:
        return self.layout.chunks(start, stop, crcs)

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()

    def _source(self, m: Member) -> Any:
        reader, chunk, deid = self._readers(m.path), self.chunk, self.deid
        if deid is not None and m.deid is not None:
            planned = m.deid
            return lambda: deid.chunks(reader, m.path, m.name, planned, chunk)
        return lambda: exact_chunks(reader, m.path, m.name, m.size, chunk)

    def _plan(self, parts: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> list[Member]:
        patients: dict[tuple[Any, Any], int] = {}
        studies: dict[Any, tuple[int, int]] = {}
        sizes: dict[str, int | str] = {}
        planned: dict[str, DeidFile | str] = {}
        paths = [str(f["path"]) for _, files in parts for f in files]
        if self.deid is None:
            sizes = probe(self._readers, paths)
        else:
            planned = self._deid_plans(paths)
        members: list[Member] = []
        for series_no, (series, files) in enumerate(parts, start=1):
            pkey = (series.get("PatientID"), series.get("PatientName"))
            patient = patients.setdefault(pkey, len(patients) + 1)
            skey = series.get("StudyInstanceUID") or ("no study uid", series_no)
            study = studies.setdefault(
                skey, (patient, sum(1 for p, _ in studies.values() if p == patient) + 1)
            )
            folder = ("DICOM", f"PA{study[0]:06d}", f"ST{study[1]:06d}", f"SE{series_no:06d}")
            for n, f in enumerate(files, start=1):
                file_id = (*folder, f"IM{n:06d}")
                path = str(f["path"])
                indexed = int(f.get("size") or 0)
                values = {k: series.get(k) for k in _STUDY_FIELDS + _SERIES_FIELDS}
                values.update(
                    SOPClassUID=f.get("SOPClassUID"),
                    SOPInstanceUID=f.get("SOPInstanceUID"),
                    TransferSyntaxUID=f.get("TransferSyntaxUID"),
                    InstanceNumber=f.get("InstanceNumber"),
                )
                base: dict[str, Any] = {
                    "n": len(members) + 1,
                    "name": "/".join(file_id),
                    "file_id": file_id,
                    "path": path,
                }
                if self.deid is not None:
                    plan = planned[path]
                    if isinstance(plan, str):
                        members.append(
                            Member(**base, size=indexed, indexed_size=indexed, values={}, missing=plan)
                        )
                        continue
                    members.append(
                        Member(**base, size=plan.size, indexed_size=indexed, values=plan.values, deid=plan)
                    )
                    continue
                now = sizes[path]
                members.append(
                    Member(
                        **base,
                        size=now if isinstance(now, int) else indexed,
                        indexed_size=indexed,
                        values=values,
                        missing=None if isinstance(now, int) else now,
                    )
                )
        return members

    def _deid_plans(self, paths: list[str]) -> dict[str, DeidFile | str]:
        """Each file's de-identified plan (or why it cannot be read): in worker processes through
        `plan_map` when given (header work is CPU-bound), else here."""
        assert self.deid is not None
        if self._plan_map is not None and self._reader_for is None:
            work = functools.partial(plan_in_worker, self.deid.seed, self._settings)
            return dict(zip(paths, self._plan_map(work, paths), strict=True))
        found: dict[str, DeidFile | str] = {}
        for path in paths:
            try:
                found[path] = self.deid.plan(self._readers(path), path)
            except OSError as exc:
                found[path] = why(exc)
        return found

    def _readme(self, practice: str) -> bytes:
        lines = [
            "Medical images shared with you" + (f" by {practice}" if practice else ""),
            "",
            "How to open them:",
            "1. Unzip everything first, keeping the folders (Windows: right-click the zip, Extract All).",
            "2. Open the DICOMDIR file, or the unzipped folder, in a DICOM viewer:",
            "   - RadiAnt DICOM Viewer (Windows): File > Open DICOMDIR, or drag the folder onto it.",
            "   - MicroDicom (Windows): File > Open DICOMDIR.",
            "   - Horos or OsiriX (Mac): File > Import > the unzipped folder.",
            "   - Weasis (any system): File > Import > DICOMDIR (or DICOM folder).",
            "MANIFEST.txt lists every file, and any that could not be included.",
        ]
        if self.deid is not None:
            lines += [
                "",
                "These images are de-identified (DICOM PS3.15 Basic Application Level Confidentiality",
                "Profile): names, IDs and UIDs are replaced and dates shifted. Text burned into the",
                "pixels (common in ultrasound and screenshots) cannot be removed this way.",
            ]
        lines += ["", "These are patient records: keep them confidential and delete them when done."]
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def _manifest(self, made: datetime) -> bytes:
        missing = self.missing
        kind = "de-identified images" if self.deid is not None else "images"
        lines = [f"pacsindex: {len(self.series)} series of {kind}, shared as a zip"]
        for s, first in zip(self.series, self._first_values(), strict=True):
            number = first.get("SeriesNumber")
            description = "" if self.deid is not None else s.get("SeriesDescription") or ""
            lines.append(
                f"Series {number if number is not None else ''} {first.get('Modality') or ''} "
                f"{description}".rstrip()
                + f" (SeriesInstanceUID {first.get('SeriesInstanceUID') or ''})"
            )
        lines += [
            f"Study date: {self._first_values()[0].get('StudyDate') or '' if self.series else ''}",
            f"Made: {made.astimezone(timezone.utc).isoformat(timespec='seconds')}",
            f"Files: {len(self.members)} in the index, {len(self.members) - len(missing)} in this zip, "
            f"{len(missing)} missing",
            "",
            "name\tbytes\tSOPInstanceUID\tInstanceNumber\tstatus",
        ]
        for m in self.members:
            status = m.missing or (
                f"ok (changed since indexing: was {m.indexed_size} bytes)" if m.changed else "ok"
            )
            if m.missing is None and not _in_dicomdir(m.values):
                status += " (not in the DICOMDIR: its header lacks a UID)"
            instance = m.values.get("InstanceNumber")
            lines.append(
                f"{m.name}\t{m.size}\t{m.values.get('SOPInstanceUID') or ''}\t"
                f"{'' if instance is None else instance}\t{status}"
            )
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def _first_values(self) -> list[Mapping[str, Any]]:
        """Per series, the values of its first file that was read (de-identified ones when so)."""
        out: list[Mapping[str, Any]] = []
        for s in self.series:
            folder_values: Mapping[str, Any] = s if self.deid is None else {}
            out.append(folder_values)
        if self.deid is not None:
            by_folder: dict[str, Mapping[str, Any]] = {}
            for m in self.members:
                if m.missing is None:
                    by_folder.setdefault(m.file_id[3], m.values)
            out = [by_folder.get(f"SE{i:06d}", {}) for i in range(1, len(self.series) + 1)]
        return out


def _in_dicomdir(values: Mapping[str, Any]) -> bool:
    return all(
        values.get(k) for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    )
