"""`python -m pacsindex` runs the command-line interface."""

from __future__ import annotations

from pacsindex.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
