"""Layers only point down: every import in the package, at module or function level, goes to its own layer or a
lower one, in the order the README's architecture section gives."""

from __future__ import annotations

import ast
from pathlib import Path

import prunesearch

PACKAGE = Path(prunesearch.__file__).parent

#: lowest first; a module's layer is that of its longest listed prefix (the README lists the same order)
LAYERS = [
    [
        "prunesearch.errors",
        "prunesearch._paths",
        "prunesearch._heap",
        "prunesearch._reporter",
        "prunesearch._config",
        "prunesearch._workload",
        "prunesearch._hf",
        "prunesearch._pooling",
        "prunesearch._pareto",
        "prunesearch._registry",
        "prunesearch._objectives",
        "prunesearch.standalone",
    ],
    ["prunesearch.space"],
    ["prunesearch.prune"],
    ["prunesearch._quality", "prunesearch._io", "prunesearch._models"],
    ["prunesearch.graph"],
    ["prunesearch.oracle"],
    ["prunesearch.search"],
    ["prunesearch._spec", "prunesearch._run"],
    ["prunesearch._pipeline"],
    ["prunesearch.export"],
    ["prunesearch.report"],
    ["prunesearch.cli"],
]


def layer_of(module: str) -> int:
    best = max(
        ((len(p), i) for i, layer in enumerate(LAYERS) for p in layer if module == p or module.startswith(p + ".")),
        default=None,
    )
    assert best is not None, f"{module} is in no layer: add it to LAYERS and to the README's architecture section"
    return best[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every prunesearch import in ``path``, at any depth."""
    found = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package up
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.append((node.lineno, base))
    return [(line, name) for line, name in found if name.startswith("prunesearch.")]


def test_every_import_points_down_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if module == "prunesearch":  # the root re-exports the public API of every layer
            continue
        mine = layer_of(module)
        for line, target in imports(path, module):
            if layer_of(target) > mine:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} imports {target}")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_every_listed_layer_exists():
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for layer in LAYERS:
        for prefix in layer:
            assert any(m == prefix or m.startswith(prefix + ".") for m in modules), f"{prefix} is listed but absent"
