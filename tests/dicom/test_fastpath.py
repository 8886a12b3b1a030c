"""The header fast path reads common files on its own: a CT-like file in explicit or implicit VR is read
without importing pydicom (the fallback, ~0.15-0.3 s of a small run), with the same fields pydicom gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_dicom

READ = """
import json, sys
from pacsindex.dicom.headers import open_local, read_header
result = read_header(sys.argv[1], open_local)
print(json.dumps({"status": result.status, "pydicom": "pydicom" in sys.modules,
                  "name": result.record.PatientName if result.record else None,
                  "series": result.record.SeriesInstanceUID if result.record else None}))
"""


@pytest.mark.parametrize("implicit", [False, True])
def test_a_plain_file_is_read_without_pydicom(tmp_path: Path, implicit: bool) -> None:
    path = write_dicom(
        tmp_path / "IM0.dcm", implicit=implicit, PatientName="MÜLLER^Hans", charset="ISO_IR 192"
    )
    out = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["status"] == "dicom" and got["name"] == "MÜLLER^Hans" and got["series"]
    assert not got["pydicom"]  # the fast path handled it: no fallback
