"""The project's own imports form no cycles, and packages import only the layers below them.

An AST walk of every module of the `rapport` distribution (the directories pyproject.toml maps to packages)
and of the DAG files, counting imports anywhere in a file, also the ones inside functions: a lazy import
hides a cycle from Python's loader, not from a reader. docs/architecture.md explains the layers.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lower layers first. A package may import its own modules and any package of a lower layer, nothing else.
LAYERS: list[set[str]] = [
    {"rapport", "rapport.core"},
    {"rapport.demo", "rapport.experiments", "rapport.predictions"},
    {"rapport.transform"},
    {"rapport.extractors", "rapport.expectations", "rapport.privacy", "rapport.reports"},
    {"rapport.publishing"},
    {"rapport.pipeline"},
    {"rapport.orchestration"},
    {"rapport.cli", "dags"},
]


def package_dirs(root: Path) -> dict[str, Path]:
    """Package name -> directory, as pyproject.toml's setuptools configuration maps them."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = config.get("package-dir", {})
    out = {}
    for name in config["packages"]:
        # a subpackage not mapped itself lives under its parent's directory
        parent, _, leaf = name.rpartition(".")
        out[name] = root / mapped[name] if name in mapped else out[parent] / leaf if parent else root / name
    return out


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the distribution (and the DAG files, as `dags.<name>`) -> its file."""
    modules: dict[str, Path] = {}
    for package, directory in package_dirs(root).items():
        for path in directory.glob("*.py"):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    for path in (root / "dags").glob("*.py"):
        modules[f"dags.{path.stem}"] = path
    return modules


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports (absolute or relative, at any depth of the file)."""
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod when there is one
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import rapport.core.config` names the module; attributes don't
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: Path) -> nx.DiGraph:
    modules = module_files(root)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for target in imports_of(module, path, set(modules)):
            graph.add_edge(module, target)
    return graph


def package_of(module: str) -> str:
    """The responsibility a module belongs to: `rapport.<package>` (or `rapport.cli`, `dags`)."""
    parts = module.split(".")
    return parts[0] if parts[0] == "dags" else ".".join(parts[:2])


def package_graph(graph: nx.DiGraph) -> nx.DiGraph:
    packages = nx.DiGraph()
    packages.add_nodes_from({package_of(m) for m in graph})
    for a, b in graph.edges:
        if package_of(a) != package_of(b):
            packages.add_edge(package_of(a), package_of(b), via=(a, b))
    return packages


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph(ROOT)


def test_the_walk_sees_the_project(graph):
    # guards the test itself: a mapping error would make every assertion below vacuous
    assert len(graph) > 60
    assert ("rapport.cli", "rapport.orchestration.local_runner") in graph.edges  # a lazy import, inside cmd_run
    assert ("dags.rapport_daily", "rapport.pipeline.steps") in graph.edges


def test_no_cycle_between_modules(graph):
    assert cycles(graph) == []


def test_no_cycle_between_packages(graph):
    packages = package_graph(graph)
    found = cycles(packages)
    detail = {tuple(c): [packages.edges[a, b]["via"] for a, b in packages.edges if a in c and b in c] for c in found}
    assert found == [], detail


def test_packages_import_only_lower_layers(graph):
    layer = {package: i for i, members in enumerate(LAYERS) for package in members}
    packages = package_graph(graph)
    assert set(packages) <= set(layer), f"packages missing from LAYERS: {set(packages) - set(layer)}"
    upward = defaultdict(list)
    for a, b in packages.edges:
        if layer[b] >= layer[a]:
            upward[a].append(packages.edges[a, b]["via"])
    assert dict(upward) == {}


def test_the_walk_finds_a_planted_cycle(tmp_path):
    """The checks can fail: a copy of the tree where the lowest layer imports the highest has a cycle."""
    for name in ("pyproject.toml",):
        (tmp_path / name).write_text((ROOT / name).read_text())
    for directory in {p for p in package_dirs(ROOT).values()} | {ROOT / "dags"}:
        target = tmp_path / directory.relative_to(ROOT)
        target.mkdir(parents=True, exist_ok=True)
        for path in directory.glob("*.py"):
            (target / path.name).write_text(path.read_text())
    config = tmp_path / "rapport" / "core" / "config.py"
    config.write_text(config.read_text() + "\n\ndef _planted():\n    from rapport.cli import main  # noqa\n")
    planted = import_graph(tmp_path)
    assert any("rapport.core.config" in c and "rapport.cli" in c for c in cycles(planted))
    assert cycles(package_graph(planted))
