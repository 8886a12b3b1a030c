"""Direct SMB access to the NAS: connections, readers, the saved NAS settings."""

from __future__ import annotations

__all__ = []
