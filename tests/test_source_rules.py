"""Rules the source itself must keep, checked on its syntax tree.

No shell: every process gets an argument list. YAML is only ever loaded safely.
Each third-party SDK is imported by exactly one adapter module, so retries,
timeouts and redaction live in one place per service. Imports inside `mlops/`
point one way: no module reaches itself again through what it imports, even
from inside a function. A grep would pass on a comment and miss `shell = True`
spelled differently; the AST does neither.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = sorted(p for p in (ROOT / "mlops").rglob("*.py") if "scaffold" not in p.parts)
EVERYTHING = sorted({*PRODUCT, *(ROOT / "mlops" / "scaffold").rglob("*.py"),
                     *(ROOT / "hack").glob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
                     *(ROOT / "components").rglob("*.py"), *(ROOT / "pipelines").rglob("*.py")})

# The one module allowed to import each SDK (top-level package name -> module).
SDK_ADAPTERS = {
    "docker": "mlops/adapters/builder.py",
    "kubernetes": "mlops/adapters/cluster.py",
    "kfp": "mlops/adapters/kfpc.py",
    "tenacity": "mlops/adapters/retry.py",
    "jsonschema": "mlops/adapters/crds.py",
    "ruamel": "mlops/adapters/yamlio.py",
    "yaml": "mlops/adapters/safeyaml.py",
    "requests": "mlops/adapters/transport.py",
    "urllib3": "mlops/adapters/transport.py",
    "mlflow": "mlops/adapters/tracking.py",
}
UNSAFE_LOADERS = {"unsafe_load", "unsafe_load_all", "full_load", "full_load_all", "Loader",
                  "FullLoader", "UnsafeLoader"}
LOADING_CALLS = {"yaml.load", "yaml.load_all", "yaml.compose", "yaml.compose_all",
                 "yaml.parse", "yaml.scan"}
SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"),
               ("subprocess", "getstatusoutput")}


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def shell_problems(module: ast.Module) -> list[str]:
    problems = []
    for node in ast.walk(module):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant)
                                          and kw.value.value is False):
                problems.append(f"line {node.lineno}: shell={ast.unparse(kw.value)}")
        func = node.func
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in SHELL_CALLS):
            problems.append(f"line {node.lineno}: {func.value.id}.{func.attr}()")
    return problems


def safe_loader_names(module: ast.Module) -> set[str]:
    """Module-level names bound to PyYAML's safe loaders (`_Loader = getattr(yaml, ...)`)."""
    names = {"yaml.SafeLoader", "yaml.CSafeLoader"}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            text = ast.unparse(node.value)
            if "SafeLoader" in text and not UNSAFE_LOADERS & set(re.findall(r"\w+", text)):
                names.add(node.targets[0].id)
    return names


def unsafe_yaml(module: ast.Module) -> list[str]:
    """PyYAML used without a safe loader, or ruamel.yaml asked for its unsafe loader."""
    problems = []
    pyyaml = "yaml" in imported_packages(module)  # else `yaml` is a ruamel YAML() instance
    safe = safe_loader_names(module)
    for node in ast.walk(module):
        if (pyyaml and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "yaml" and node.attr in UNSAFE_LOADERS):
            problems.append(f"line {node.lineno}: yaml.{node.attr}")
        if pyyaml and isinstance(node, ast.Call) and ast.unparse(node.func) in LOADING_CALLS:
            loader = next((ast.unparse(k.value) for k in node.keywords if k.arg == "Loader"), None)
            if loader not in safe:
                problems.append(f"line {node.lineno}: {ast.unparse(node.func)} with "
                                f"Loader={loader}")
        if isinstance(node, ast.keyword) and node.arg == "typ" and isinstance(
                node.value, ast.Constant) and node.value.value in ("unsafe", "full"):
            problems.append(f"line {node.value.lineno}: ruamel YAML(typ={node.value.value!r})")
    return problems


def imported_packages(module: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def problems(rule) -> dict[str, list[str]]:
    found = {rel(path): rule(tree(path)) for path in EVERYTHING}
    return {path: lines for path, lines in found.items() if lines}


def test_no_shell():
    assert len(EVERYTHING) > 80  # the globs above still find the code
    assert problems(shell_problems) == {}


def test_yaml_is_loaded_safely():
    assert problems(unsafe_yaml) == {}


def adapter_problems(modules: Mapping[str, ast.Module]) -> list[str]:
    """Each SDK of SDK_ADAPTERS imported by its adapter and by no other module."""
    importers: dict[str, set[str]] = defaultdict(set)
    for path, module in modules.items():
        for package in imported_packages(module) & SDK_ADAPTERS.keys():
            importers[package].add(path)
    return [f"{package} imported by {sorted(importers[package])}, not only by {adapter}"
            for package, adapter in SDK_ADAPTERS.items() if importers[package] != {adapter}]


def product_trees() -> dict[str, ast.Module]:
    return {rel(path): tree(path) for path in PRODUCT}


def test_each_sdk_has_exactly_one_adapter():
    assert adapter_problems(product_trees()) == []


# Not imported at all: mlops runs the `git` executable (adapters/gitops), which a
# promotion needs anyway, instead of paying ~60 ms for GitPython's imports.
UNUSED_SDKS = {"git": "GitPython"}


def unused_sdk_problems(modules: Mapping[str, ast.Module]) -> list[str]:
    return [f"{path} imports {UNUSED_SDKS[package]}" for path, module in sorted(modules.items())
            for package in sorted(imported_packages(module) & UNUSED_SDKS.keys())]


def test_no_module_imports_gitpython():
    assert unused_sdk_problems(product_trees()) == []


def test_a_planted_gitpython_import_is_reported():
    trees = product_trees()
    trees["mlops/adapters/gitops/workspace.py"] = ast.parse("def f():\n    import git\n")
    assert unused_sdk_problems(trees) == ["mlops/adapters/gitops/workspace.py imports GitPython"]


@pytest.mark.parametrize(("planted", "source", "expected"), [
    ("mlops/adapters/registry.py", "import requests",
     "requests imported by ['mlops/adapters/registry.py', 'mlops/adapters/transport.py'], "
     "not only by mlops/adapters/transport.py"),
    ("mlops/adapters/cluster.py", "def f():\n    from urllib3.exceptions import HTTPError",
     "urllib3 imported by ['mlops/adapters/cluster.py', 'mlops/adapters/transport.py'], "
     "not only by mlops/adapters/transport.py"),
    ("mlops/services/tracking.py", "def f():\n    from mlflow.tracking import MlflowClient",
     "mlflow imported by ['mlops/adapters/tracking.py', 'mlops/services/tracking.py'], "
     "not only by mlops/adapters/tracking.py"),
    ("mlops/pipelines.py", "import yaml as pyyaml",
     "yaml imported by ['mlops/adapters/safeyaml.py', 'mlops/pipelines.py'], "
     "not only by mlops/adapters/safeyaml.py"),
])
def test_the_adapter_rule_catches_a_planted_import(planted, source, expected):
    modules = product_trees()
    modules[planted].body.extend(ast.parse(source).body)
    assert adapter_problems(modules) == [expected]


def module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(name: str, module: ast.Module, known: Collection[str],
                     package: bool) -> set[str]:
    """The `known` modules that `module` imports anywhere: top level, functions, TYPE_CHECKING."""
    found = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            found |= {_nearest(alias.name, known) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, node, package)
            found |= {_nearest(f"{base}.{alias.name}", known) for alias in node.names}
    return found - {None, name}


def _absolute(name: str, node: ast.ImportFrom, package: bool) -> str:
    """`from .x import y` resolved against the importing module's package."""
    if not node.level:
        return node.module or ""
    parent = name.split(".")[: len(name.split(".")) - node.level + package]
    return ".".join(parent + ([node.module] if node.module else []))


def _nearest(dotted: str, known: Collection[str]) -> str | None:
    """The module `dotted` names, or holds the name: `mlops.config.MlopsConfig` -> `mlops.config`."""
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def import_graph(modules: Mapping[str, ast.Module]) -> dict[str, set[str]]:
    names = {module_name(path): path for path in modules}
    return {name: imported_modules(name, modules[path], names.keys(),
                                   path.endswith("__init__.py"))
            for name, path in names.items()}


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return seen


def import_cycles(modules: Mapping[str, ast.Module]) -> list[list[str]]:
    """Each group of modules that import one another, directly or round a longer loop."""
    graph = import_graph(modules)
    reach = {node: _reachable(graph, node) for node in graph}
    groups = {tuple(sorted(other for other in reach[node] if node in reach[other]))
              for node in graph if node in reach[node]}
    return sorted(list(group) for group in groups)


def test_mlops_imports_have_no_cycle():
    modules = product_trees()
    assert len(import_graph(modules)["mlops.cli"]) > 3  # the graph still sees imports
    assert import_cycles(modules) == []


@pytest.mark.parametrize(("sources", "expected"), [
    ({"mlops/a.py": "from mlops import b", "mlops/b.py": "def f():\n    from mlops.a import x"},
     [["mlops.a", "mlops.b"]]),
    ({"mlops/a.py": "import mlops.b.c", "mlops/b/__init__.py": "",
      "mlops/b/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import A"},
     [["mlops.a", "mlops.b.c"]]),
    ({"mlops/a.py": "from mlops import b", "mlops/b.py": "from mlops.errors import E",
      "mlops/errors.py": ""}, []),
])
def test_the_cycle_rule_catches_a_planted_cycle(sources, expected):
    assert import_cycles({path: ast.parse(text) for path, text in sources.items()}) == expected


@pytest.mark.parametrize(("source", "rule", "expected"), [
    ("subprocess.run('ls', shell=True)", shell_problems, ["line 1: shell=True"]),
    ("subprocess.run(cmd, shell=flag)", shell_problems, ["line 1: shell=flag"]),
    ("os.system('ls')", shell_problems, ["line 1: os.system()"]),
    ("subprocess.run(['ls'], shell=False)", shell_problems, []),
    ("import yaml\nyaml.load(text, Loader=yaml.Loader)", unsafe_yaml,
     ["line 2: yaml.Loader", "line 2: yaml.load with Loader=yaml.Loader"]),
    ("import yaml\nyaml.load(text)", unsafe_yaml, ["line 2: yaml.load with Loader=None"]),
    ("import yaml\nyaml.unsafe_load(text)", unsafe_yaml, ["line 2: yaml.unsafe_load"]),
    ("import yaml\nL = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\nyaml.load(t, Loader=L)",
     unsafe_yaml, []),
    ("import yaml\nL = yaml.FullLoader or yaml.SafeLoader\nyaml.load(t, Loader=L)", unsafe_yaml,
     ["line 2: yaml.FullLoader", "line 3: yaml.load with Loader=L"]),
    ("YAML(typ='unsafe')", unsafe_yaml, ["line 1: ruamel YAML(typ='unsafe')"]),
    ("import yaml\nyaml.safe_load(text)", unsafe_yaml, []),
])
def test_the_rules_catch_what_they_claim(source, rule, expected):
    assert sorted(rule(ast.parse(source))) == sorted(expected)
