"""`mlops init DIR`: scaffold a repository that passes `mlops validate` and builds.

The files come from `mlops/scaffold/`: `repo/` is the new repository (a name
part `dot-x` becomes `.x`, so the templates are no dotfiles of mlops' own; a
`.tmpl` file is filled with string.Template), and the CI system's folder is
copied as `CI_SCAFFOLDS` says (`--ci github`: `github/` becomes `.github/`;
`--ci gitlab`: `gitlab/dot-gitlab-ci.yml` becomes `.gitlab-ci.yml`).
Argo CD Applications are rendered from the new mlops.yaml. Everything is made
in a hidden sibling folder, committed there, and only then moved into DIR, so
a failure leaves DIR as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from mlops import argocd, names, repourl
from mlops import config as cfg
from mlops.adapters import gitops
from mlops.atomicfile import umask
from mlops.commands import Context
from mlops.errors import ConfigError, UsageError
from mlops.records import dataclass
from mlops.redact import redact

DEFAULT_REGISTRY = "127.0.0.1:5000/mlops"
DEFAULT_REPO_URL = "https://github.com/example/ml.git"
COMMIT_MESSAGE = "Scaffold with mlops init"
DOT_PREFIX = "dot-"
TEMPLATE_SUFFIX = ".tmpl"
SKIPPED = ("__pycache__", ".pyc", ".DS_Store")


@dataclass(frozen=True)
class CiScaffold:
    folder: str  # under mlops/scaffold/, copied as it is
    target: str  # where its files land in the new repository
    readme_row: str  # the new README's line for them
    readme_staging: str  # the new README's sentence on what CI does for staging
    readme_prod: str  # and its remark on what runs the prod canary loop


CI_SCAFFOLDS = {
    "github": CiScaffold(
        "github", ".github",
        "| `.github/workflows/` | CI: check pull requests, build and promote on main, "
        "roll out prod |",
        "The GitHub staging workflow (`.github/workflows/staging.yml`) does the same.",
        "the GitHub prod workflow, `.github/workflows/prod.yml`, runs it"),
    "gitlab": CiScaffold(
        "gitlab", ".",
        "| `.gitlab-ci.yml` | CI: validate and test every pipeline, build and promote into "
        "dev on the default branch |",
        "`.gitlab-ci.yml` promotes into dev only: it has no staging or prod jobs, so run "
        "these commands yourself (or in a job of your own).",
        "`.gitlab-ci.yml` has no prod job: run it where the kubeconfig and Prometheus are"),
}


@dataclass(frozen=True)
class InitOptions:
    target: Path
    registry: str = DEFAULT_REGISTRY
    repo_url: str = DEFAULT_REPO_URL
    branch: str = "main"
    ci: str = "github"  # a key of CI_SCAFFOLDS


@dataclass(frozen=True)
class Scaffolded:
    path: Path
    files: list[str]
    commit: str
    fallback_identity: bool


def init(ctx: Context, opts: InitOptions) -> int:
    target = _target(ctx.root, opts.target)
    _check_options(opts)
    staging = _staging_dir(target)
    try:
        created = _scaffold(staging, opts)
        commit, fallback = gitops.init_repository(staging, opts.branch, COMMIT_MESSAGE)
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _report(ctx, Scaffolded(target, created, commit, fallback), opts)
    return 0


# -- checks, before anything is written ---------------------------------------


def _target(cwd: Path, given: Path) -> Path:
    target = (cwd / given).resolve()
    if target.exists():
        if not target.is_dir():
            raise UsageError(f"{target}: exists and is not a directory")
        if any(target.iterdir()):
            raise UsageError(f"{target}: exists and is not empty; mlops init needs a new "
                             "or empty directory")
    elif not target.parent.is_dir():
        raise UsageError(f"{target.parent}: no such directory (create it first)")
    return target


def _check_options(opts: InitOptions) -> None:
    problem = names.registry_problem(opts.registry.strip().rstrip("/"))
    if problem:  # the same check as mlops.yaml's `registry:`, which this value becomes
        raise UsageError(redact(f"--registry must look like host[:port][/namespace] (no scheme), "
                                f"got {repourl.shown(opts.registry)!r}: {problem}"))
    problem = repourl.problem(opts.repo_url.strip())
    if problem:
        raise UsageError(f"--repo-url {problem}")
    problem = gitops.branch_name_problem(opts.branch)
    if problem:
        raise UsageError(f"--branch {opts.branch!r}: {problem}")
    if opts.ci not in CI_SCAFFOLDS:
        raise UsageError(f"--ci must be one of {', '.join(CI_SCAFFOLDS)}, got {opts.ci!r}")


# -- making the files ---------------------------------------------------------


def _staging_dir(target: Path) -> Path:
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.mlops-init-",
                                        dir=target.parent))
    except OSError as exc:  # named by the folder asked for, not the temp one beside it
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    staging.chmod(0o777 & ~umask())  # as `mkdir DIR` would have made it, not mkdtemp's 0700
    return staging


def _scaffold(root: Path, opts: InitOptions) -> list[str]:
    scaffold = files("mlops") / "scaffold"
    ci = CI_SCAFFOLDS[opts.ci]
    registry = opts.registry.strip().rstrip("/")
    values = {"registry": registry, "registry_yaml": _yaml_scalar(registry),
              "branch": _yaml_scalar(opts.branch), "repo_url": opts.repo_url.strip(),
              "ci_row": ci.readme_row, "ci_staging": ci.readme_staging,
              "ci_prod": ci.readme_prod}
    for parts, source in _walk(scaffold / "repo"):
        _write_template(root, parts, source, values)
    for parts, source in _walk(scaffold / ci.folder) if (scaffold / ci.folder).is_dir() else ():
        _write(root / ci.target / Path(*_undotted(parts)), source.read_bytes())
    config = cfg.load_config(root, {})  # no $MLOPS_REGISTRY: the file's own values
    _write(root / argocd.APPLICATIONS_FILE,
           argocd.render_applications(config, values["repo_url"]).encode())
    _write(root / argocd.ARGOCD_DIR / "kustomization.yaml", argocd.render_kustomization().encode())
    _write(root / argocd.ROOT_FILE, argocd.render_root(config, values["repo_url"]).encode())
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(root).parts[:1])


def _walk(folder: Traversable, parts: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], Traversable]]:
    """(path parts, file) for every file below `folder`, in name order."""
    for child in sorted(folder.iterdir(), key=lambda c: c.name):
        if child.name.endswith(SKIPPED):
            continue
        if child.is_dir():
            yield from _walk(child, (*parts, child.name))
        else:
            yield (*parts, child.name), child


def _write_template(root: Path, parts: tuple[str, ...], source: Traversable,
                    values: dict[str, str]) -> None:
    out = _undotted(parts)
    if out[-1].endswith(TEMPLATE_SUFFIX):
        out[-1] = out[-1][: -len(TEMPLATE_SUFFIX)]
        text = string.Template(source.read_text(encoding="utf-8")).substitute(values)
        _write(root / Path(*out), text.encode())
    else:
        _write(root / Path(*out), source.read_bytes())


def _undotted(parts: tuple[str, ...]) -> list[str]:
    return [f".{p[len(DOT_PREFIX):]}" if p.startswith(DOT_PREFIX) else p for p in parts]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _yaml_scalar(text: str) -> str:
    """`text` as a YAML plain scalar when that reads back as the same string (not `1.5`,
    `true`, `0x1f`, `[::1]:5000`), else double-quoted."""
    from mlops.adapters import yamlio

    try:
        plain = yamlio.loads(f"v: {text}\n", "value").get("v") == text
    except ConfigError:
        plain = False
    return text if plain and "#" not in text else json.dumps(text)


# -- into place ---------------------------------------------------------------


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the finished folder to DIR; into an existing empty DIR, move its entries
    (DIR may be someone's working directory), putting them back if one move fails."""
    if not target.exists():
        try:
            staging.rename(target)
        except OSError:  # made (and filled) by someone else meanwhile
            raise UsageError(f"{target}: appeared while scaffolding and is not empty") from None
        return
    moved: list[Path] = []
    try:
        for entry in sorted(staging.iterdir()):
            if (target / entry.name).exists():
                raise UsageError(f"{target}: is no longer empty ({entry.name} appeared)")
            entry.rename(target / entry.name)
            moved.append(entry)
    except BaseException:
        for entry in reversed(moved):
            (target / entry.name).rename(entry)
        raise


# -- output -------------------------------------------------------------------


def _report(ctx: Context, done: Scaffolded, opts: InitOptions) -> None:
    doc = {"path": str(done.path), "branch": opts.branch, "commit": done.commit,
           "fallback_identity": done.fallback_identity, "files": done.files}
    lines = [f"created {done.path}: {len(done.files)} files, commit {done.commit[:12]} "
             f"on {opts.branch} ({COMMIT_MESSAGE!r})"]
    lines += [f"  {name}" for name in done.files]
    if done.fallback_identity:
        name, email = gitops.INIT_FALLBACK_IDENTITY
        lines.append(f"committed as {name} <{email}>: git knows no user.name/user.email here "
                     "(set them, then `git commit --amend --reset-author`)")
    lines += ["", "next:", *_next_steps(ctx.root, done.path)]
    ctx.out.result(doc, "\n".join(lines))


def _next_steps(cwd: Path, path: Path) -> list[str]:
    rel = os.path.relpath(path, cwd.resolve())
    where = [] if rel == "." else [f"  cd {rel if not rel.startswith('..') else path}"]
    return where + [
        "  mlops validate                    # what CI would refuse",
        "  mlops build --output build.json   # set registry: in mlops.yaml (or $MLOPS_REGISTRY)",
        "  git remote add origin URL && git push -u origin HEAD",
        "  mlops promote --to dev --build build.json",
        "  see README.md for training, promotion to staging and prod, and approvals",
    ]
