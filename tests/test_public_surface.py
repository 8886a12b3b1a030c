"""Each package's public surface is its `__all__`: every name there exists, none hides a submodule of the
same name, and what one package imports from another's modules is re-exported there (the layer order
itself is import-linter's, in `make lint`)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import pacsindex

SRC = Path(pacsindex.__file__).resolve().parent
PACKAGES = sorted(  # dotted below pacsindex: "index", "index.sa", "sources.smb" ...
    info.name
    for info in pkgutil.walk_packages([str(SRC)])
    if info.ispkg and info.name.split(".")[0] not in ("cli", "web")
)


def is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split(".")[1:])
    return path.with_suffix(".py").is_file() or path.is_dir()


def used_from_outside(package: str) -> set[str]:
    """Names other top-level packages import from the modules right in `package` (not submodules, nor
    private names)."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] == package.split(".")[0]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            module = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            if module.rpartition(".")[0] == f"pacsindex.{package}":
                names |= {
                    a.name
                    for a in node.names
                    if not a.name.startswith("_")
                    and not is_module(f"{module}.{a.name}")
                    and a.name != module.rpartition(".")[2]  # `from ...search import search`
                }
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_exist_and_cover_what_others_use(package: str) -> None:
    module = importlib.import_module(f"pacsindex.{package}")
    exported = set(module.__all__)
    assert all(hasattr(module, name) for name in exported)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert not exported & submodules, "a re-exported name would hide a submodule"
    missing = used_from_outside(package) - exported
    assert not missing, f"pacsindex.{package} should re-export {sorted(missing)} in __all__"
