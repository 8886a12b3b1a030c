"""pacsindex: index a radiology practice's DICOM archive in place, search it, share one series safely."""

from __future__ import annotations

__version__ = "0.1.0"
