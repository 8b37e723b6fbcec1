"""The import direction of DESIGN.md, checked on the source's syntax trees: `data` never imports `models`
(nor anything above it), `config` imports nothing of vlit's but itself and `errors`, and so on up the stack.

A plain AST walk rather than import-linter: it reads every `import` and `from ... import`, including the
ones inside functions (vlit imports heavy modules lazily there), which is exactly where a stray upward import
would hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vlit"

# package -> the vlit packages it must never import (directly or inside a function)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "config": ("assets", "data", "models", "training", "inference", "evaluation", "serving", "quickstart",
               "reproduce"),
    "assets": ("data", "models", "training", "inference", "evaluation", "serving", "quickstart", "reproduce"),
    "data": ("models", "training", "inference", "evaluation", "serving", "quickstart", "reproduce"),
    "models": ("training", "inference", "evaluation", "serving", "quickstart", "reproduce"),
    "training": ("inference", "evaluation", "serving", "quickstart", "reproduce"),
    "inference": ("training", "evaluation", "serving", "quickstart", "reproduce"),
    "evaluation": ("training", "serving", "quickstart", "reproduce"),
    "serving": ("training", "evaluation", "quickstart", "reproduce"),
    "reproduce": ("serving", "quickstart"),
}


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in a file; relative imports are resolved against `package`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from vlit import models` imports the package just as `import vlit.models` does.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if module == "vlit"]
    return found


def _package(path: Path) -> str:
    return ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "vlit" else None


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    root = SRC / package
    files = sorted(root.rglob("*.py")) if root.is_dir() else [SRC / f"{package}.py"]
    assert files, package
    bad = [f"{path.relative_to(SRC.parent)}:{line} imports {module}"
           for path in files for line, module in imported_modules(path, _package(path))
           if _layer(module) in FORBIDDEN[package]]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from vlit.models.vlm import VisionLanguageModel\n    from ..models import x\n"
                     "    from vlit import serving\n")
    modules = [m for _, m in imported_modules(probe, "vlit.data")]
    assert modules == ["vlit.models.vlm", "vlit.models", "vlit", "vlit.serving"]
    assert [_layer(m) for m in modules] == ["models", "models", None, "serving"]
