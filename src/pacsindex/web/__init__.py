"""The web service: an authenticated JSON API over the engine and the single-page UI that uses it.

`create_app(settings)` builds everything; nothing is created at import time. `server` runs it under uvicorn.
"""

from __future__ import annotations

from pacsindex.web.app import create_app

__all__ = ["create_app"]
