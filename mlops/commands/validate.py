"""`mlops validate`: everything CI would refuse, checked before a commit.

The config and every component spec; then per environment: the overlay
renders with `kubectl kustomize`, rendered resources fit their CRD schemas
(`--crds DIR`), no mutable image reference where digests are required and no
base placeholder (`image: serve`) where Argo CD would deploy it,
`release.yaml` agrees with the kustomization, and every committed compiled
pipeline equals a fresh compile of its sources. Every problem is one line;
nothing is written (a fresh compile happens in a temporary directory).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops import argocd, isvc, overlay, validation
from mlops import components as comps
from mlops import config as cfg
from mlops import pipelines as pl
from mlops.adapters import crds, kustomize, safeyaml
from mlops.commands import Context
from mlops.errors import EXIT_ERROR, ConfigError, MlopsError
from mlops.records import dataclass, field
from mlops.services.envdir import EnvDir, environment
from mlops.services.freshcompile import FreshCompiler


@dataclass(frozen=True)
class ValidateOptions:
    envs: tuple[str, ...] = ()
    crds: Path | None = None


@dataclass
class Report:
    checks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    automated: dict[str, bool] = field(default_factory=dict)  # Application -> auto-syncs

    def problem(self, check: str, where: str, message: str) -> None:
        """Record one problem; its message leads with `where` unless it names it already."""
        line = message if message.startswith(where) else f"{where}: {message}"
        self.problems.append({"check": check, "where": where, "message": line})

    def attempt(self, check: str, where: str, step: Callable[[], Any]) -> Any:
        """Run one step; an MlopsError becomes a problem of `check` instead of the end."""
        try:
            return step()
        except MlopsError as exc:
            self.problem(check, where, exc.message)
            return None


def validate(ctx: Context, opts: ValidateOptions) -> int:
    schemas = crds.load(opts.crds) if opts.crds else None
    report = Report()
    config = report.attempt("config", cfg.CONFIG_FILE,
                            lambda: cfg.load_config(ctx.root, ctx.environ))
    _check_components(ctx.root, report)
    report.automated = _automated_sync(ctx.root, report)
    if config is not None:
        envs = [environment(config, name) for name in opts.envs] or list(config.environments)
        with FreshCompiler(ctx.root) as compiler:
            for env in envs:
                _check_environment(ctx.root, env, schemas, compiler, report)
    _report(ctx, report, schemas)
    return EXIT_ERROR if report.problems else 0


def _check_components(root: Path, report: Report) -> None:
    names = comps.component_folders(root)
    loaded = [report.attempt("components", f"{comps.COMPONENTS_DIR}/{name}",
                             functools.partial(comps.load_component, root, name))
              for name in names]
    report.checks.append({"check": "components", "count": sum(s is not None for s in loaded)})
    specs = [s for s in loaded if s is not None]
    if specs:  # what build would refuse before hashing, so validate passes nothing it refuses
        from mlops.services import buildplan

        report.attempt("components", comps.COMPONENTS_DIR,
                       functools.partial(buildplan.check_inputs, root, specs))


def _check_environment(root, env: cfg.Environment, schemas, compiler, report: Report) -> None:
    folder = EnvDir(root, env.name)
    where = folder.where
    record = report.attempt("release", folder.record_display, folder.read_record)
    docs = report.attempt("render", where,
                          lambda: kustomize.render(root / where, where))
    check: dict[str, Any] = {"check": "environment", "env": env.name,
                             "release": record.release.id if record else None}
    report.checks.append(check)
    if docs is None:
        return
    check["resources"] = len(docs)
    for message in validation.serving_disagreements(record, docs) if record else []:
        report.problem("release", f"{where}/release.yaml", message)
    if schemas is not None:
        check["schema_checked"] = _check_schemas(docs, schemas, where, report)
    _check_images(root, env, record, docs, report)
    compiled = _committed_pipelines(root, env.name, report)
    check["pipelines"] = len(compiled)
    text = report.attempt("release", overlay.display_path(env.name),
                          lambda: overlay.read_text(root, env.name))
    if text is None:
        return
    pins = report.attempt("release", overlay.display_path(env.name),
                          lambda: overlay.image_pins(overlay.parse(text, where), where))
    if record is not None and pins is not None:
        versions = {name: version for name, (version, _) in compiled.items()}
        for message in validation.release_disagreements(record, pins, versions):
            report.problem("release", f"{where}/release.yaml", message)
    if compiled and pins is not None:
        commit = record.release.source_commit if record else None
        compiler.check(env, pins, compiled, commit, report)
    check["schedules"] = _check_schedules(root, env, text, report)


def _check_schedules(root: Path, env: cfg.Environment, overlay_text: str,
                     report: Report) -> int:
    """The committed ScheduledWorkflows are what mlops.yaml renders against the committed
    pipelines: a schedule changed without `mlops compile` would never reach the cluster."""
    from mlops.services import compiler as compiling
    from mlops.services import scheduling

    where = EnvDir(root, env.name).schedules_where
    planned = report.attempt("schedules", where,
                             lambda: compiling.schedule_plan(root, env, []))
    if planned is None:
        return 0
    listed = overlay.resources(overlay.parse(overlay_text, overlay.display_path(env.name)))
    for message in scheduling.drift(root, env.name, planned, listed):
        report.problem("schedules", message.split(":", 1)[0], message)  # each names its file
    return len(planned.rendered)


def _check_images(root: Path, env: cfg.Environment, record, docs, report: Report) -> None:
    """No image Argo CD would deploy unpinned: digests where required, no base placeholder.

    An environment without a release renders the base's placeholders (`image:
    serve`); they are allowed only while its Application does not sync
    automatically, which `mlops promote` turns on with the first release.
    """
    where = EnvDir(root, env.name).where
    components = frozenset(comps.component_folders(root))
    if env.require_digest:
        allowed = components if record is None else frozenset()
        for message in validation.unpinned_images(docs, env.name, allowed):
            report.problem("digests", where, message)
    reason = _why_deployed(env, record, report.automated)
    if reason and (record is None or not env.require_digest):  # else reported just above
        for message in validation.deployed_placeholders(docs, components, reason):
            report.problem("digests", where, message)
    for doc in isvc.services(docs):
        note = isvc.mode_note(doc)
        if note:
            report.notes.append(f"{where}: {note}")


def _why_deployed(env: cfg.Environment, record, automated: dict[str, bool]) -> str | None:
    app = env.argocd_application
    if record is not None:
        return f"environment {env.name} has release {record.release.id} (promote it again)"
    if automated.get(app):
        return (f"Argo CD Application {app} ({argocd.APPLICATIONS_FILE}) syncs automatically "
                f"although {env.name} has no release yet: remove its `automated:` until the "
                "first promotion, which turns it on")
    return None


def _automated_sync(root: Path, report: Report) -> dict[str, bool]:
    """Application name -> automated, from applications.yaml ({} without the file)."""
    path = root / argocd.APPLICATIONS_FILE
    if not path.is_file():
        return {}
    found = report.attempt("argocd", argocd.APPLICATIONS_FILE, lambda: argocd.automated_sync(
        safeyaml.read_text(path, argocd.APPLICATIONS_FILE)))
    return found or {}


def _check_schemas(docs, schemas: crds.Schemas, where: str, report: Report) -> int:
    checked = 0
    for doc in docs:
        if not schemas.covers(doc):
            continue
        checked += 1
        for message in crds.problems(schemas, doc):
            report.problem("schema", where, f"{validation.resource_name(doc)}: {message}")
    return checked


def _committed_pipelines(root: Path, env: str, report: Report) -> dict[str, tuple[str, str]]:
    """Pipeline name -> (PipelineVersion name, text) for each committed manifest."""
    where = EnvDir(root, env)
    folder = root / where.pipelines_where
    found = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        display = f"{where.pipelines_where}/{path.name}"
        text = report.attempt("pipelines", display,
                              functools.partial(safeyaml.read_text, path, display))
        if text is None:
            continue
        version = report.attempt("pipelines", display,
                                 functools.partial(_version_name, text, display))
        if version is not None:
            found[path.stem] = (version, text)
    return found


def _version_name(text: str, display: str) -> str:
    docs = pl.parse_rendered(text, display)
    try:
        return str(pl.version_of(docs)["metadata"]["name"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{display}: not a compiled pipeline (no {exc})") from None


def _report(ctx: Context, report: Report, schemas: crds.Schemas | None) -> None:
    doc = {"ok": not report.problems, "crds": schemas.folder if schemas else None,
           "checks": report.checks, "problems": report.problems, "notes": report.notes}
    lines = [_check_line(c) for c in report.checks]
    if schemas is None:
        lines.append("schemas: not checked (pass --crds DIR to check against CRDs)")
    lines += [f"note: {n}" for n in report.notes]
    lines += [p["message"] for p in report.problems]
    count = len(report.problems)
    lines.append("ok" if not count else f"{count} problem{'s' * (count != 1)}")
    ctx.out.result(doc, "\n".join(lines))
    for p in report.problems:
        ctx.out.annotate(p["message"], file=p["where"] if Path(p["where"]).suffix else None)


def _check_line(check: dict[str, Any]) -> str:
    if check["check"] == "components":
        return f"components: {check['count']} loaded"
    parts = [f"{check.get('resources', 0)} resources rendered"]
    if "schema_checked" in check:
        parts.append(f"{check['schema_checked']} checked against CRDs")
    parts.append(f"{check.get('pipelines', 0)} compiled pipelines")
    if check.get("schedules"):
        parts.append(f"{check['schedules']} schedules")
    parts.append(f"release {check['release']}" if check["release"] else "not promoted yet")
    return f"{check['env']}: " + ", ".join(parts)
