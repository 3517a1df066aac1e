"""`mlops validate` and `mlops init`: a repository's shape, checked or scaffolded."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.parsers import Subcommands, add, common


def _add_validate(sub: Subcommands) -> None:
    p = add(
        sub,
        "validate",
        description=(
            "Check what CI would refuse, before a commit: mlops.yaml and every component.yaml; "
            "then for each environment, that `kubectl kustomize` renders the overlay, that the "
            "rendered resources validate against the CRD schemas in --crds DIR, that no image "
            "is a mutable reference where digests are required, that release.yaml agrees with "
            "the kustomization, and that every committed compiled pipeline equals a fresh "
            "compile of its sources (at the release's source commit). Writes nothing. "
            "Exit 1 when anything is wrong, with one line per problem."
        ),
    )
    p.add_argument("--env", dest="envs", action="append", default=[], metavar="ENV",
                   help="only this environment (repeatable; default: all)")
    p.add_argument("--crds", metavar="DIR", type=Path,
                   help="folder of CustomResourceDefinition YAML files to validate against")
    common(p)
    p.set_defaults(handler=_run_validate)


def _run_validate(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.validate import ValidateOptions, validate

    return validate(ctx, ValidateOptions(envs=tuple(args.envs), crds=args.crds))


def _add_init(sub: Subcommands) -> None:
    p = add(
        sub,
        "init",
        description=(
            "Create DIR (or fill an empty DIR) with a repository that passes `mlops validate` "
            "and whose component builds with `mlops build`: mlops.yaml, components/model/, "
            "pipelines/training.py, environments/{base,dev,staging,prod}, Argo CD "
            "Applications in environments/argocd/, CI (GitHub Actions workflows in "
            ".github/workflows/, or with --ci gitlab a .gitlab-ci.yml) and a pre-commit "
            "config. Then `git init` and a first commit. Refuses a non-empty DIR."
        ),
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="the new repository's folder")
    p.add_argument("--registry", metavar="REF", default="127.0.0.1:5000/mlops",
                   help="image registry for mlops.yaml (default: 127.0.0.1:5000/mlops)")
    p.add_argument("--repo-url", metavar="URL", default="https://github.com/example/ml.git",
                   help="git URL Argo CD syncs from (default: https://github.com/example/ml.git)")
    p.add_argument("--branch", metavar="NAME", default="main", help="branch (default: main)")
    p.add_argument("--ci", choices=("github", "gitlab"), default="github",
                   help="the CI system to scaffold: github (.github/workflows/) or gitlab "
                   "(.gitlab-ci.yml; docs/gitlab-ci.md in mlops) (default: github)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(handler=_run_init, repo=None, needs_repo=False)


def _run_init(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.init import InitOptions, init

    return init(ctx, InitOptions(target=args.dir, registry=args.registry,
                                 repo_url=args.repo_url, branch=args.branch, ci=args.ci))


def register(sub: Subcommands) -> None:
    sub.lazy("validate", "check config, components, overlays, CRD schemas, digests and "
             "compiled pipelines", _add_validate)
    sub.lazy("init", "scaffold a new repository: config, a component, a pipeline, overlays, CI",
             _add_init)
