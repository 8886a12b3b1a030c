"""Operations: what keeps a running practice's pacsindex current and POPIA-ready without anyone pressing
a button. The indexing schedule (`scheduler`), retention purges (`retention`), access reports and the audit
export (`reports`, `pdf`), backups (`backup`), health (`health`) and the Windows service (`winservice`).

A layer of its own between `web`/`cli` and the features: a purge, a backup or an access report reads the
index, the share store and the audit log together, which no feature may do (features never import each
other).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacsindex.lazy import lazy_names

if TYPE_CHECKING:
    from pacsindex.ops.backup import ServiceLock
    from pacsindex.ops.health import Health, disk_warning
    from pacsindex.ops.pdf import report_pdf
    from pacsindex.ops.retention import purge
    from pacsindex.ops.scheduler import SCHEDULER, Scheduler

__all__ = [
    "disk_warning",
    "Health",
    "purge",
    "report_pdf",
    "SCHEDULER",
    "Scheduler",
    "ServiceLock",
]

# Imported on first use: `pacsindex index` must not pay for fpdf and the share bundle (~0.4 s).
_FROM = {
    "disk_warning": "pacsindex.ops.health",
    "Health": "pacsindex.ops.health",
    "purge": "pacsindex.ops.retention",
    "report_pdf": "pacsindex.ops.pdf",
    "SCHEDULER": "pacsindex.ops.scheduler",
    "Scheduler": "pacsindex.ops.scheduler",
    "ServiceLock": "pacsindex.ops.backup",
}

__getattr__ = lazy_names(__name__, _FROM)
