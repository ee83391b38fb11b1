"""The layering stays true: a small walk over every module's imports (issue: one operations
layer). Lower layers never import higher ones; the doors (commands, web, cli) sit on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hps_api"
#: package -> the packages it must never import (directly or inside a function)
FORBIDDEN = {
    "net": {"model", "store", "importer", "observe", "boot", "services", "render", "ops",
            "commands", "web", "cli", "entry"},
    "model": {"importer", "boot", "services", "render", "ops", "commands", "web", "cli",
              "entry"},
    "store": {"model", "importer", "boot", "services", "render", "ops", "commands", "web", "cli",
              "entry"},
    "observe": {"boot", "services", "render", "ops", "commands", "web", "cli", "entry"},
    "importer": {"boot", "services", "render", "ops", "commands", "web", "cli", "entry"},
    "boot": {"services", "ops", "commands", "web", "cli", "entry"},
    "render": {"services", "ops", "commands", "web", "cli", "entry"},
    "services": {"ops", "commands", "web", "cli", "entry"},
    "ops": {"commands", "web", "cli", "entry"},
    "commands": {"web", "cli", "entry"},
    "web": {"cli", "entry"},
    "power": {"model", "importer", "boot", "services", "render", "ops", "commands", "web", "cli",
              "entry"},
}


def imported_packages(path: Path) -> set[str]:
    """Return the hps_api sub-packages a module imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and
                 node.level == 0 else [a.name for a in node.names]
                 if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "hps_api" and len(parts) > 1:
                found.add(parts[1])
    return found


def modules() -> list[tuple[str, Path]]:
    return [(path.relative_to(PACKAGE).parts[0], path) for path in sorted(PACKAGE.rglob("*.py"))
            if len(path.relative_to(PACKAGE).parts) > 1]


@pytest.mark.parametrize(("layer", "path"), modules(), ids=lambda v: str(v).split("hps_api/")[-1])
def test_no_module_imports_a_layer_above_its_own(layer: str, path: Path) -> None:
    wrong = imported_packages(path) & FORBIDDEN.get(layer, set())
    assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from hps_api.services import x\n    import hps_api.web.ui\n")
    assert imported_packages(module) == {"services", "web"}
