"""The import graph keeps DESIGN's bands: pure -> compute -> I/O, dependencies point down only.

Every ``import labelwise...`` statement in ``src/labelwise`` (module level or inside a
function) is read with ``ast``; an import from a lower band into a higher one fails the test.
Imports inside a module-level ``__getattr__`` are backward-compatible re-exports of names that
moved down a band (e.g. ``labelwise.strategies.committee.Committee``) and are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "labelwise"

IO = ("labelwise.service", "labelwise.storage", "labelwise.cli", "labelwise.importers",
      "labelwise.settings", "labelwise.testing.store")  # fmt: skip
# the compute band fits models, featurises, simulates and reports
COMPUTE = (
    "labelwise.loop", "labelwise.models.training", "labelwise.models.committee",
    "labelwise.models.calibrated", "labelwise.simulate", "labelwise.annotators",
    "labelwise.evaluate", "labelwise.report", "labelwise.datasets", "labelwise.peers",
    "labelwise.demo", "labelwise.features", "labelwise.progress", "labelwise.text",
    "labelwise.imbalanced", "labelwise.testing", "labelwise.agreement",
    "labelwise.quality", "labelwise.scale", "labelwise.embeddings",
)  # fmt: skip
RANK = {"pure": 0, "compute": 1, "io": 2}


def band(module: str) -> str:
    if any(module == p or module.startswith(p + ".") for p in IO):
        return "io"
    if any(module == p or module.startswith(p + ".") for p in COMPUTE):
        return "compute"
    return "pure"  # strategies, select, stopping, calibration, metrics, models (adapters), ...


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def labelwise_imports(tree: ast.Module) -> list[tuple[int, str]]:
    reexport = {
        id(n)
        for f in tree.body
        if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
        for n in ast.walk(f)
    }
    out = []
    for node in ast.walk(tree):
        if id(node) in reexport:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("labelwise"):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("labelwise")]
    return out


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_is_checked():
    assert len(MODULES) > 60
    assert band("labelwise.strategies.scores") == "pure"
    assert band("labelwise.models.training") == "compute"
    assert band("labelwise.service.rounds") == "io"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down(path):
    me = module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    upward = [
        f"line {line}: {target} ({band(target)})"
        for line, target in labelwise_imports(tree)
        if RANK[band(target)] > RANK[band(me)]
    ]
    assert not upward, f"{me} ({band(me)}) imports from a higher band: {upward}"


def test_the_service_fits_no_models_itself():
    """The service orchestrates: scikit-learn is used by the compute band, not by service/."""
    offenders = [
        f"{module_name(p)}: {mod}"
        for p in sorted((SRC / "service").rglob("*.py"))
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for mod in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
        )
        if mod.startswith("sklearn")
    ]
    assert not offenders
