"""The package layout: one package per stage, arrows that run one way, no import circle, no two
modules of one name, and the modules that moved still importable under their old names."""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

import fcn_lit

SRC = Path(fcn_lit.__file__).parent
# A package may import from its own rank and below, never above (entry points sit over them all).
RANK = {"inference": 4, "training": 3, "experiments": 2, "data": 1, "models": 1, "metrics": 1,
        "errors": 0, "cli": 0, "config_check": 0, "__init__": 0}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every fcn_lit module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("fcn_lit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fcn_lit"):
            for alias in node.names:  # `from fcn_lit.inference import runtime` imports a module
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}
GRAPH = {name: imported_modules(path) - {name} for name, path in MODULES.items()}


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_top_level_is_the_packages_face():
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= 6, top
    assert {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == {
        "data", "models", "training", "inference", "experiments"}


def test_no_two_modules_share_a_file_name():
    names = Counter(p.name for p in SRC.rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert [name for name, count in names.items() if count > 1] == []


def test_every_import_goes_to_its_own_stage_or_below():
    upward = [(m, dep) for m, deps in GRAPH.items() for dep in deps if RANK[stage(dep)] > RANK[stage(m)]]
    assert upward == []


def test_no_import_circle():
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for dep in sorted(GRAPH.get(module, ())):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def test_the_graph_sees_a_circle_and_an_upward_arrow(monkeypatch):
    """The two checks above on a graph with one: they are not vacuous."""
    monkeypatch.setitem(GRAPH, "fcn_lit.models.fcn", GRAPH["fcn_lit.models.fcn"] | {"fcn_lit.training.module"})
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_no_import_circle()
    with pytest.raises(AssertionError):
        test_every_import_goes_to_its_own_stage_or_below()


@pytest.mark.parametrize("old, new", sorted(fcn_lit.MOVED_MODULES.items()))
def test_an_old_module_path_is_the_module_it_became(old, new):
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert any(new in str(w.message) for w in caught)


def test_an_old_hydra_target_still_instantiates():
    from hydra.utils import get_class

    assert get_class("fcn_lit.module.FCNModule") is importlib.import_module("fcn_lit.training.module").FCNModule
    assert get_class("fcn_lit.checkpointing.AtomicCheckpointIO").__module__ == "fcn_lit.training.checkpointing"


def test_the_project_itself_names_no_old_module_path():
    """The old paths are for users' configs and earlier checkpoints; the project uses the new ones."""
    import re
    import subprocess

    old = re.compile("|".join(re.escape(name) + r"(?![\w])" for name in fcn_lit.MOVED_MODULES))
    allowed = {"src/fcn_lit/__init__.py", "tests/test_layout.py", "tests/training/test_checkpoint_before_layout.py"}
    files = subprocess.run(["git", "ls-files", "*.py", "*.yaml", "*.md", "*.ipynb", "Makefile"], cwd=SRC.parents[1],
                           capture_output=True, text=True, check=True).stdout.split()
    named = [f"{f}: {m.group(0)}" for f in files if f not in allowed
             for m in old.finditer((SRC.parents[1] / f).read_text())]
    assert named == []
