"""The package is layered: every import points down, so there is no import cycle.

``TIERS`` declares the layers, top first (the architecture page of the docs draws the
same picture). A module may import only modules of the tiers below its own -- at module
level or inside a function alike -- and every module of the package must be placed in a
tier, so a new module has to say where it belongs.
"""

import ast
from pathlib import Path

import pytest

import sklearn_structlearn

PACKAGE = Path(sklearn_structlearn.__file__).parent

TIERS = [
    # the front door and the applications built on the estimators
    {"__init__", "cli"},
    {"classifier", "distributed"},
    # estimators (thin): the stacked learner, then the layer it stacks
    {"deep", "sharing"},
    {"layer", "topology"},
    # the problem's pieces: "auto" penalty rules, the coding problem as a function,
    # preprocessing, the streaming driver, measurements, pictures, export
    {"penalties", "plotting", "export", "_classifier_torch"},
    {"encoding", "preprocessing", "_streaming", "structure", "entropy", "datasets",
     "export._build", "_information"},
    {"objective", "_grouping", "export._modules", "export._shared"},
    {"export._reference"},
    # kernels (the subpackage is one unit), then the helpers everything uses
    {"_solvers"},
    {"_groups", "_sparse", "_threads", "_progress", "_validation", "_torch", "exceptions",
     "_lattice"},
    {"_param_validation"},
    {"_transaction"},
]
TIER = {module: rank for rank, tier in enumerate(TIERS) for module in tier}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[0] == "_solvers":  # the kernels are one unit
        return "_solvers"
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path):
    """Package modules imported by the file at ``path`` (anywhere in it, lazy ones too)."""
    package_parts = list(path.relative_to(PACKAGE).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: "from ..x import y", "from . import z"
                base = package_parts[:len(package_parts) - (node.level - 1)]
                module = base + (node.module.split(".") if node.module else [])
            elif (node.module or "").split(".")[0] == "sklearn_structlearn":
                module = node.module.split(".")[1:]
            else:
                continue
            # "y" may be a submodule or a name defined in the module: _resolve tells
            found.update(_resolve(module + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(_resolve(alias.name.split(".")[1:]) for alias in node.names
                         if alias.name.split(".")[0] == "sklearn_structlearn")
    return found


def _resolve(parts):
    """The package module named by ``parts``, a trailing attribute name dropped."""
    for end in range(len(parts), 0, -1):
        candidate = PACKAGE.joinpath(*parts[:end])
        if candidate.with_suffix(".py").exists():
            return _module_name(candidate.with_suffix(".py"))
        if (candidate / "__init__.py").exists():
            return _module_name(candidate / "__init__.py")
    return "__init__"  # a name of the package itself


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_placed_in_a_tier():
    unplaced = sorted({_module_name(p) for p in MODULES} - set(TIER))
    assert not unplaced, f"place these modules in TIERS: {unplaced}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    module = _module_name(path)
    upward = sorted(
        f"{module} (tier {TIER[module]}) imports {imported} (tier {TIER[imported]})"
        for imported in _imports(path)
        if imported != module and TIER.get(imported, -1) <= TIER[module]
    )
    assert not upward, "\n".join(upward)


def test_the_import_checker_sees_relative_and_lazy_imports(tmp_path):
    # the checker itself: deep imports layer at module level and plotting in a method
    assert {"layer", "plotting", "export", "structure"} <= _imports(PACKAGE / "deep.py")
    assert "_solvers" in _imports(PACKAGE / "encoding.py")
    assert "export._reference" in _imports(PACKAGE / "export" / "_modules.py")
