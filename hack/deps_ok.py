"""Exit 0 when this interpreter has mlops installed from this checkout (editable) and every
requirement of it and of its `test` extra at a version pyproject.toml allows; 1 otherwise.

hack/setup.sh runs it to decide whether `pip install -e .[test]` is needed: a
requirement added or narrowed in pyproject.toml then installs on the next run, where
a fixed list of imports would not notice it.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
import tomllib
from pathlib import Path


def missing(root: Path) -> list[str]:
    from packaging.requirements import Requirement

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    problems = []
    for text in wanted:
        req = Requirement(text)
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            problems.append(f"{req.name} not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name} {version} is not {req.specifier}")
    return problems


def installed_here(root: Path) -> bool:
    try:
        import mlops
    except ImportError:
        return False
    return Path(mlops.__file__).resolve().parent == (root / "mlops").resolve()


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    try:
        problems = missing(root)
    except ImportError:  # no `packaging`: let pip decide
        return 1
    if not installed_here(root):
        problems.append(f"mlops is not installed from {root}")
    for problem in problems:
        print(f"==> {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
