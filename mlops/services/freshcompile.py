"""Fresh compiles for `mlops validate`: is a committed pipeline what its sources give?

A promoted environment's pipelines were compiled from the sources of its
release's source commit, so that is what they are compared with: a pull
request that edits `pipelines/` does not make every environment "stale"
before it is promoted. An environment without a release is compared with
the work tree. Compiles happen in a temporary directory with a throwaway
cache, and the same inputs are compiled once for all environments.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops import components as comps
from mlops import config as cfg
from mlops import pipelines as pl
from mlops.adapters import gitops
from mlops.cache import JsonCache
from mlops.errors import MlopsError
from mlops.overlay import ImagePin
from mlops.services.compiler import Compiled, compile_environment
from mlops.services.envdir import EnvDir


class FreshCompiler:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = tempfile.TemporaryDirectory(prefix="mlops-validate-")
        self._trees: dict[str, Path] = {}
        self._compiled: dict[tuple, dict[str, Compiled]] = {}

    def __enter__(self) -> FreshCompiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def check(self, env: cfg.Environment, pins: Mapping[str, ImagePin],
              committed: Mapping[str, tuple[str, str]], commit: str | None, report: Any) -> None:
        """Report each committed manifest of `env` that a fresh compile does not reproduce."""
        images = {name: pl.image_ref(pin.new_name or name, pin.digest, pin.new_tag)
                  for name, pin in pins.items()}
        where = EnvDir(Path(), env.name).pipelines_where
        fresh = report.attempt("pipelines", where,
                               lambda: self._compile(env, images, tuple(sorted(committed)), commit))
        if fresh is None:
            return
        source = f"at {commit[:12]}" if commit else "in the work tree"
        for name, (version, text) in sorted(committed.items()):
            new = fresh[name]
            if new.text == text:
                continue
            detail = (f"gives {new.version}, committed is {version}" if new.version != version
                      else f"gives the same version {version} but different text")
            report.problem("pipelines", f"{where}/{name}.yaml",
                           f"stale: a fresh compile of {new.source.display} {source} {detail}; "
                           f"recompile with `mlops compile --env {env.name}` or promote again")

    def _compile(self, env, images, names, commit) -> dict[str, Compiled]:
        key = (commit, tuple(sorted(images.items())), env.require_digest, names)
        if key not in self._compiled:
            root = self._tree(commit) if commit else self.root
            cache = JsonCache(Path(self._tmp.name) / "unsaved-cache.json")
            results = compile_environment(root, env, images, cache, names, force=True)
            self._compiled[key] = {r.source.name: r for r in results}
        return self._compiled[key]

    def _tree(self, commit: str) -> Path:
        """The sources a compile reads (pipelines/, component specs) as of `commit`."""
        if commit not in self._trees:
            if not gitops.has_commit(self.root, commit):
                raise MlopsError(f"source commit {commit[:12]} is not in this clone; "
                                 "fetch the full history (e.g. actions/checkout fetch-depth: 0)")
            dest = Path(self._tmp.name) / commit
            files = [f for f in gitops.tree_files(self.root, commit, [pl.PIPELINES_DIR,
                                                                      comps.COMPONENTS_DIR])
                     if f.startswith(pl.PIPELINES_DIR + "/") or f.endswith(comps.COMPONENT_FILE)]
            gitops.export_tree(self.root, commit, files, dest)
            self._trees[commit] = dest
        return self._trees[commit]
