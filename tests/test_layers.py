"""The layer map of `mlops/`, checked on the syntax tree of every module (docs/architecture.md).

    entry      mlops.cli, mlops.__main__, mlops.parsers.*   argparse wiring
    commands   mlops.commands.*                             one module per subcommand
    services   mlops.services.*                             what commands share
    library    everything else: config, formats, ci         (no upward imports)
    adapters   mlops.adapters.*                             one per outside system
    core       mlops.core.*                                 pure decisions

A module imports only from its own layer or below; a command module imports
no other command module; an adapter imports only the plumbing below it, not
configuration or formats; the core imports no adapter, no I/O module of the
standard library and nothing above it. Imports inside functions count: a
lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RANK = {"entry": 4, "commands": 3, "services": 2, "library": 1, "adapters": 0, "core": 0}
# Below everything: what any module, adapters and the core included, may import.
FOUNDATION = {"mlops", "mlops.errors", "mlops.names", "mlops.records", "mlops.redact",
              "mlops.safejson"}
# What the core may import besides itself and the foundation: pure formats and config types.
CORE_MAY_IMPORT = FOUNDATION | {"mlops.release", "mlops.trailers", "mlops.envconfig",
                                "mlops.canaryconfig"}
# An adapter knows its outside system, not mlops' configuration: what it needs comes in
# as arguments. `dsl` is what a pipeline file imports, which the kfp adapter loads;
# `tracked` is the plain index type git's adapter fills.
ADAPTERS_MAY_IMPORT = FOUNDATION | {"mlops.dsl", "mlops.tracked"}
IO_MODULES = {"subprocess", "socket", "shutil", "tempfile", "urllib.request", "http",
              "requests", "urllib3", "docker", "kubernetes", "git", "kfp", "threading",
              "concurrent"}


def layer(module: str) -> str:
    if module in ("mlops.cli", "mlops.__main__") or module.startswith("mlops.parsers"):
        return "entry"
    for name in ("commands", "services", "adapters", "core"):
        if module == f"mlops.{name}" or module.startswith(f"mlops.{name}."):
            return name
    return "library"


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(module: str, tree: ast.Module, is_package: bool,
               known: set[str]) -> set[str]:
    """Every module `module` imports, anywhere in it: `from pkg import mod` names pkg.mod,
    `from pkg import name` names pkg."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the mlops modules and top-level outside packages it imports."""
    paths = {module_name(root, p): p for p in (root / "mlops").rglob("*.py")
             if "scaffold" not in p.parts}
    graph = {}
    for module, path in paths.items():
        raw = imports_of(module, ast.parse(path.read_text(encoding="utf-8")),
                         path.name == "__init__.py", set(paths))
        graph[module] = {m for m in raw if m in paths or not m.startswith("mlops")}
    return graph


def violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            problem = _problem(module, target)
            if problem:
                problems.append(f"{module} imports {target}: {problem}")
    return problems


def _problem(module: str, target: str) -> str | None:
    here = layer(module)
    if not target.startswith("mlops"):
        io = any(target == m or target.startswith(f"{m}.") for m in IO_MODULES)
        return "the core does no I/O" if here == "core" and io else None
    there = layer(target)
    if here == "core" and there != "core":
        return None if target in CORE_MAY_IMPORT else "the core imports only pure modules"
    if here == "adapters" and there != "adapters":
        if target in ADAPTERS_MAY_IMPORT:
            return None
        if there == "library":
            return "an adapter imports only other adapters and the foundation"
    if RANK[there] > RANK[here] and target not in FOUNDATION:
        return f"{here} may not import {there}"
    if here == "commands" and there == "commands" and target != "mlops.commands" \
            and module != "mlops.commands":
        return "a command imports no other command (move what they share to mlops.services)"
    return None


def test_the_package_keeps_its_layers():
    assert violations(import_graph(ROOT)) == []


def test_no_command_imports_another_command():
    graph = import_graph(ROOT)
    commands = [m for m in graph if layer(m) == "commands" and m != "mlops.commands"]
    assert len(commands) >= 12  # every subcommand's module is looked at
    for module in commands:
        assert not {t for t in graph[module] if t in commands}, module


PLANTED = [
    ("mlops/commands/promote.py", "from mlops.commands.rollback import Seen\n",
     "mlops.commands.promote imports mlops.commands.rollback: a command imports no other"),
    ("mlops/commands/promote.py", "def f():\n    from mlops.commands import rollback\n",
     "mlops.commands.promote imports mlops.commands.rollback: a command imports no other"),
    ("mlops/services/envdir.py", "from mlops.commands import compile\n",
     "mlops.services.envdir imports mlops.commands.compile: services may not import commands"),
    ("mlops/overlay.py", "from mlops.services.envdir import EnvDir\n",
     "mlops.overlay imports mlops.services.envdir: library may not import services"),
    ("mlops/core/promotion.py", "from mlops.adapters import registry\n",
     "mlops.core.promotion imports mlops.adapters.registry: the core imports only pure"),
    ("mlops/adapters/registry.py", "from mlops import overlay\n",
     "mlops.adapters.registry imports mlops.overlay: an adapter imports only other adapters"),
    ("mlops/adapters/registry.py", "from mlops.services import envdir\n",
     "mlops.adapters.registry imports mlops.services.envdir: adapters may not import services"),
    ("mlops/core/promotion.py", "import subprocess\n",
     "mlops.core.promotion imports subprocess: the core does no I/O"),
    ("mlops/services/canary.py", "from ..commands import rollout\n",
     "mlops.services.canary imports mlops.commands.rollout: services may not import commands"),
]


@pytest.mark.parametrize(("path", "source", "expected"), PLANTED,
                         ids=[p[2].split(":")[0].split(" imports ")[1] + "-" + str(i)
                              for i, p in enumerate(PLANTED)])
def test_a_planted_violation_is_found(tmp_path, path, source, expected):
    for module in ("commands/promote.py", "commands/rollback.py", "commands/compile.py",
                   "commands/rollout.py", "services/envdir.py", "services/canary.py",
                   "core/promotion.py", "overlay.py", "adapters/registry.py"):
        target = tmp_path / "mlops" / module
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        target.touch()
    (tmp_path / path).write_text(source)
    found = violations(import_graph(tmp_path))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_the_layers_read_as_documented():
    assert [layer(m) for m in ("mlops.cli", "mlops.parsers.rollout", "mlops.commands",
                               "mlops.commands.build", "mlops.services.envdir",
                               "mlops.core.promotion", "mlops.adapters.registry", "mlops.context")] == [
        "entry", "entry", "commands", "commands", "services", "core", "adapters", "library"]
