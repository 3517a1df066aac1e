"""`mlops compile`: pipelines -> Pipeline + PipelineVersion manifests in an overlay.

The work is `mlops.services.compiler`'s; this parses the options and reports.
"""

from __future__ import annotations

from pathlib import Path

from mlops import config as cfg
from mlops import overlay
from mlops.adapters import gitops
from mlops.cache import JsonCache
from mlops.commands import Context
from mlops.records import dataclass
from mlops.services.compiler import (
    COMPILE_CACHE,
    Compiled,
    compile_environment,
    resolve_images,
    schedule_plan,
    write_results,
)
from mlops.services.envdir import EnvDir, environment


@dataclass(frozen=True)
class CompileOptions:
    env: str
    pipelines: tuple[str, ...] = ()
    build: Path | None = None
    force: bool = False


def compile_pipelines(ctx: Context, opts: CompileOptions) -> int:
    config = cfg.load_config(ctx.root, ctx.environ)
    env = environment(config, opts.env)
    EnvDir(ctx.root, env.name).refuse_links()  # it writes in place, as promote does
    overlay_text = overlay.read_text(ctx.root, env.name)
    images = resolve_images(ctx.root, env.name, opts.build, overlay_text)
    cache = JsonCache(gitops.git_dir(ctx.root) / COMPILE_CACHE)
    results = compile_environment(ctx.root, env, images, cache, opts.pipelines, opts.force)
    schedules = schedule_plan(ctx.root, env, results)
    write_results(ctx.root, env, results, overlay_text, schedules)
    cache.save()
    _report(ctx, env.name, results, schedules.rendered)
    return 0


def _report(ctx: Context, env: str, results: list[Compiled], schedules=()) -> None:
    doc = {
        "env": env,
        "pipelines": [
            {
                "pipeline": r.source.name,
                "source": r.source.display,
                "status": r.status,
                "version": r.version,
                "path": r.output,
                "components": list(r.components),
            }
            for r in results
        ],
        "schedules": [
            {"schedule": s.name, "pipeline": s.pipeline, "version": s.version, "path": s.path}
            for s in schedules
        ],
    }
    width = max((len(r.source.name) for r in results), default=0)
    lines = [f"{r.status:<9}  {r.source.name:<{width}}  {r.version}  {r.output}" for r in results]
    if not results:
        lines = ["no pipelines under pipelines/"]
    lines += [f"schedule   {s.name}  runs {s.version}  {s.path}" for s in schedules]
    ctx.out.result(doc, "\n".join(lines))
