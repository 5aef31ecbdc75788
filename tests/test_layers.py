"""The package's import graph points down the layers of design.md §3, read from the source with ``ast``.

frame/errors → pipeline (knows no concrete stage) → stages, io (never torch, never each other) →
neural, metrics (which scores what io synthesises) → presets, render, batch, cli. An import inside a function counts like one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ispkit"

#: top-level part of a module name → layer (lower imports nothing higher)
LAYERS = {"errors": 0, "frame": 0, "pipeline": 1, "stages": 2, "io": 2, "metrics": 3, "neural": 3}
APPLICATION = 4  # presets, render, batch, cli, debug, __init__ … : everything else
#: same-layer packages that must not reach into each other
SIDEWAYS = {("stages", "io"), ("io", "stages"), ("metrics", "neural"), ("neural", "metrics")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["ispkit", *parts])


def _imports(path: Path) -> list[str]:
    """Absolute names of every ispkit module and top-level package ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out += [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            elif node.module:
                out.append(node.module)
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    return LAYERS.get(_part(module), APPLICATION)


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    me = _module_name(path)
    bad = []
    for target in _imports(path):
        if target.split(".")[0] == "torch" and _part(me) in ("stages", "io", "pipeline", "frame", "errors"):
            bad.append(f"{target} (the classical layers never import torch)")
        if not target.startswith("ispkit.") or _part(target) == _part(me):
            continue
        if _layer(target) > _layer(me) or (_part(me), _part(target)) in SIDEWAYS:
            bad.append(target)
    assert not bad, f"{me} imports up or sideways: {bad}"


def test_config_is_a_data_layer_below_the_graph():
    assert not any(t.startswith("ispkit.pipeline.graph") for t in _imports(PACKAGE / "pipeline" / "config.py"))


def test_the_walk_sees_the_known_edges():
    """The checker itself: it finds imports that exist (so a pass is not vacuous)."""
    assert "ispkit.pipeline.config" in _imports(PACKAGE / "pipeline" / "graph.py")
    assert "ispkit.frame" in _imports(PACKAGE / "stages" / "lens_shading.py")
    assert any(t.startswith("torch") for t in _imports(PACKAGE / "neural" / "stages.py"))
    assert _layer("ispkit.render") > _layer("ispkit.neural.stages") > _layer("ispkit.stages.demosaic")
