"""`mlops build`: build, test and push the components whose inputs changed.

With `--plan`, `--shard K` and `--merge`, the same build fans out over CI
runners: one job plans the shards, one job per shard builds it, one job merges
the partial records into the build record (mlops.services.fanout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.adapters import gitops
from mlops.atomicfile import write_json_atomic
from mlops.buildoptions import BuildOptions
from mlops.commands import Context
from mlops.core.shards import waves
from mlops.errors import BuildError, UsageError
from mlops.inputs import ih_tag
from mlops.output import user_target
from mlops.plan import BUILD, REUSE, PlannedComponent
from mlops.records import replace

if TYPE_CHECKING:
    from mlops.services.buildplan import Planned
    from mlops.services.buildrun import Outcome
    from mlops.services.planmemo import Probe

__all__ = ["BuildOptions", "build"]


def build(ctx: Context, opts: BuildOptions) -> int:
    _check_fanout_flags(opts)
    if opts.plan:
        return _plan_shards(ctx, opts)
    if opts.shard is not None:
        return _build_shard(ctx, opts, _plan_file(opts), opts.shard)
    if opts.merge is not None:
        return _merge(ctx, opts, _plan_file(opts))
    if opts.dry_run:
        _check_dry_run_key(opts)
        _output_target(opts)
        return _dry_run(ctx, opts)
    signing = _signing(ctx, opts)
    target = _output_target(opts)
    planned = _make_plan(ctx, opts)
    outcomes = _carry_out(ctx, planned, planned.plan, signing, opts)
    record = build_record(planned.config.registry, planned.head, outcomes)
    return _finish(ctx, record, outcomes, target)


def _make_plan(ctx: Context, opts: BuildOptions, probe: Probe | None = None) -> Planned:
    """The plan (mlops.services.buildplan), loaded only when one is made: a dry run
    answered from the memo reads no spec, configuration or registry. `probe`: what
    the dry run read already."""
    from mlops.services.buildplan import make_plan

    if probe is None:
        return make_plan(ctx, opts)
    return make_plan(ctx, opts, probe.tree, probe.folders)


def _dry_run(ctx: Context, opts: BuildOptions) -> int:
    """The plan, printed; answered from the last dry run's memo when nothing it read
    has moved since (mlops.services.planmemo)."""
    from mlops.services import planmemo

    probe = None
    if planmemo.may_answer(ctx, opts):
        probe = planmemo.Probe(ctx, planmemo.command_line(
            opts.components, dict(opts.build_args), opts.push, ctx.out.json_mode))
        printed = probe.answer()
        if printed is not None:
            ctx.out.replay(printed)
            return 0
    planned = _make_plan(ctx, opts, probe)
    planned.cache.save()
    from mlops.services.buildplan import refuse_blocked_plan

    refuse_blocked_plan(planned.plan)
    printed = _print_plan(ctx, planned.plan, planned.head)
    if probe is not None and planmemo.plain(planned):
        probe.remember(printed)
    return 0


def _signing(ctx: Context, opts: BuildOptions) -> tuple[Path, str] | None:
    """The signing key and principal, checked before anything is built (a dry run signs
    nothing, and so never imports the build and signing services)."""
    from mlops.services.buildsign import signing_from

    return signing_from(opts.sign_key, opts.builder, ctx.environ, opts.push)


def _check_dry_run_key(opts: BuildOptions) -> None:
    """A dry run signs nothing, but a --sign-key the real build could not read is refused
    now rather than after the plan says all is well ($MLOPS_SIGNING_KEY is not: a CI job
    may set it for the build that follows)."""
    if opts.sign_key is not None:
        from mlops.adapters.sshsig import check_key

        check_key(opts.sign_key, "--sign-key")


def _carry_out(ctx: Context, planned: Planned, plan: list[PlannedComponent],
               signing: tuple[Path, str] | None, opts: BuildOptions) -> list[Outcome]:
    """Build, test, push and sign what the plan says, in waves where one component
    builds after another; returned in plan order."""
    from mlops.services.buildrun import run_plan
    from mlops.services.buildsign import Signing, attest_outcomes, check_attestable
    from mlops.services.fanout import after_relation

    config, head, access = planned.config, planned.head, planned.access
    plan = _with_labels(ctx.root, config, plan, head)
    if signing is not None:
        check_attestable(plan, head)
    jobs = opts.jobs or config.build.jobs
    after = after_relation(planned.specs)
    done: dict[str, Outcome] = {}
    for wave in waves(after, [p.name for p in plan]):
        items = [_blocked_by_failures(p, done, after) for p in plan if p.name in wave]
        done.update((o.item.name, o) for o in run_plan(ctx, items, access, opts.push, jobs))
    outcomes = [done[p.name] for p in plan]
    if signing is not None:
        source = gitops.remote_url_of(ctx.root, config.git.remote)
        outcomes = attest_outcomes(Signing(*signing, source, head or ""), access, outcomes, jobs)
    for o in outcomes:
        if o.digest:
            planned.cache.remember(o.item.image, ih_tag(o.item.input_hash), o.digest)
    planned.cache.save()
    return outcomes


def _blocked_by_failures(item: PlannedComponent, done: dict[str, Outcome],
                         after: Mapping[str, Sequence[str]]) -> PlannedComponent:
    """A component whose base failed this run is not built on a stale one."""
    failed = [b for b in after.get(item.name, ())
              if b in done and done[b].status == "failed"]
    if not failed or item.action != BUILD:
        return item
    return replace(item, blocked=f"not built: {failed[0]}, which it builds after, failed")


def _finish(ctx: Context, record: dict, outcomes: Sequence[Outcome],
            target: Path | None) -> int:
    if target is not None:
        write_json_atomic(target, record)
    _print_outcomes(ctx, record, outcomes)
    _raise_if_failed(outcomes)
    return 0


def _output_target(opts: BuildOptions) -> Path | None:
    """The checked --output path, before anything is built or pushed."""
    if opts.output is None:
        return None
    if opts.dry_run:
        raise UsageError("--output writes the build record, which a --dry-run does not make "
                         "(nothing is built or pushed); use --json for the plan")
    return user_target(opts.output, "--output")


def _with_labels(root: Path, config, plan: list[PlannedComponent], head: str | None) -> list:
    """The OCI labels for what will be built (see mlops.labels for why they are not hashed)."""
    if not any(p.action == BUILD for p in plan):
        return plan
    from mlops.labels import oci_labels

    source = gitops.remote_url_of(root, config.git.remote)
    created = gitops.commit_time(root, head) if head else None
    return [replace(p, labels=oci_labels(source, head, created, p.spec.version))
            if p.action == BUILD else p for p in plan]


def build_record(registry: str, commit: str | None, outcomes: Sequence[Outcome]) -> dict:
    from mlops.buildrecord import BuildRecord

    return BuildRecord.of(registry, commit, [o.as_record() for o in outcomes]).dump()


def _print_plan(ctx: Context, plan: list[PlannedComponent], commit: str | None) -> str:
    """Print the plan; what was printed."""
    doc = {
        "dry_run": True,
        "source_commit": commit,
        "plan": [
            {
                "component": p.name,
                "image": p.image,
                "input_hash": p.input_hash,
                "action": p.action,
                "reason": p.reason,
                "tags": list(p.tags),
                "digest": p.existing_digest,
            }
            for p in plan
        ],
    }
    width = max((len(p.name) for p in plan), default=0)
    lines = [f"{p.action:<5}  {p.name:<{width}}  {p.reason}" for p in plan]
    n_build = sum(p.action == BUILD for p in plan)
    n_reuse = sum(p.action == REUSE for p in plan)
    lines.append(f"plan: {n_build} to build, {n_reuse} to reuse (dry run, nothing done)")
    return ctx.out.result(doc, "\n".join(lines))


def _print_outcomes(ctx: Context, record: dict, outcomes: Sequence[Outcome]) -> None:
    width = max((len(o.item.name) for o in outcomes), default=0)
    lines = [o.summary_line(width) for o in outcomes]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("built", "reused", "failed")}
    lines.append(f"{counts['built']} built, {counts['reused']} reused, {counts['failed']} failed")
    ctx.out.result({**record, "ok": counts["failed"] == 0}, "\n".join(lines))


def _raise_if_failed(outcomes: Sequence[Outcome]) -> None:
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return
    first = failed[0]
    raise BuildError(
        f"{len(failed)} of {len(outcomes)} components failed; {first.item.name}: {first.error}"
    )


# -- fan-out: plan, shard, merge ------------------------------------------------------


def _check_fanout_flags(opts: BuildOptions) -> None:
    modes = [flag for flag, on in (("--plan", opts.plan), ("--shard", opts.shard is not None),
                                   ("--merge", opts.merge is not None)) if on]
    if len(modes) > 1:
        raise UsageError(f"{modes[0]} and {modes[1]} are separate steps; give one")
    if modes != ["--plan"] and (opts.shards is not None or opts.timings is not None):
        raise UsageError("--shards and --timings shape a plan: give them with --plan alone")
    if not modes:
        return
    if modes[0] != "--plan" and opts.plan_file is None:
        raise UsageError(f"{modes[0]} carries out a plan: give --plan FILE "
                         "(written by `mlops build --plan --output FILE`)")
    if opts.dry_run:
        raise UsageError(f"{modes[0]} and --dry-run do not go together")
    if modes[0] != "--plan" and (opts.components or opts.changed_since or opts.force):
        raise UsageError(f"{modes[0]} builds what the plan says: name components, "
                         "--changed-since and --force when planning")


def _plan_shards(ctx: Context, opts: BuildOptions) -> int:
    """Plan the fan-out: what to build in which shard, what to reuse. Builds nothing."""
    from mlops.services.buildplan import refuse_blocked_plan
    from mlops.services.fanout import after_relation, make_fanout_plan, sizes_for

    target = _output_target(opts)
    planned = _make_plan(ctx, opts)
    planned.cache.save()
    refuse_blocked_plan(planned.plan)
    sizes = sizes_for(ctx.root, planned.specs, planned.index, opts.timings)
    plan = make_fanout_plan(planned.head, planned.config.registry, planned.plan, sizes,
                            after_relation(planned.specs), opts.shards or 1, opts.force)
    doc = plan.dump()
    if target is not None:
        write_json_atomic(target, doc)
    lines = [f"shard {s.index}: {' '.join(s.components)}" for s in plan.shards]
    reused = plan.reused()
    if reused:
        lines.append(f"reuse: {' '.join(reused)}")
    lines.append(f"plan: {len(plan.to_build())} to build in {len(plan.shards)} shards, "
                 f"{len(reused)} to reuse")
    ctx.out.result(doc, "\n".join(lines))
    return 0


def _plan_file(opts: BuildOptions) -> Path:
    if opts.plan_file is None:  # _check_fanout_flags said so already
        raise UsageError("give --plan FILE")
    return opts.plan_file


def _build_shard(ctx: Context, opts: BuildOptions, plan_file: Path, index: int) -> int:
    """Build one shard of a plan, exactly its components, and write its partial record."""
    from mlops.services.fanout import check_carries_out, part_record, read_plan

    plan = read_plan(plan_file)
    names = plan.shard(index).components
    signing = _signing(ctx, opts)
    target = _output_target(opts)
    # A plan made with --force rebuilds what it gives the shards, as a one-runner build would.
    planned = _make_plan(ctx, replace(opts, components=names, force=plan.force))
    check_carries_out(plan, planned.head, planned.plan)
    outcomes = _carry_out(ctx, planned, planned.plan, signing, opts)
    record = build_record(planned.config.registry, planned.head, outcomes)
    return _finish(ctx, part_record(record, plan, index), outcomes, target)


def _merge(ctx: Context, opts: BuildOptions, plan_file: Path) -> int:
    """One build record from the shards' parts, and the reused images filled in from the
    registry (tagged for this commit, and signed, as a one-runner build would)."""
    from mlops.core.shards import merge_parts
    from mlops.services.fanout import check_parts_of, read_part, read_plan

    plan = read_plan(plan_file)
    parts = [(str(path), read_part(path)) for path in opts.merge or ()]
    target = _output_target(opts)
    check_parts_of(plan, parts)
    built = merge_parts(parts, plan.to_build(), plan.source_commit)
    reused = _reuse_for_merge(ctx, opts, plan) if plan.reused() else []
    by_name = {e["component"]: dict(e) for e in built} | {o.item.name: o.as_record()
                                                           for o in reused}
    from mlops.buildrecord import BuildRecord

    record = BuildRecord.of(plan.registry, plan.source_commit,
                            [by_name[name] for name in plan.order()]).dump()
    if target is not None:
        write_json_atomic(target, record)
    # Counted from the record: a shard reuses an image that appeared after planning.
    statuses = [entry.get("status") for entry in record["builds"]]
    ctx.out.result({**record, "ok": True}, f"merged {len(parts)} parts: "
                   f"{statuses.count('built')} built, {statuses.count('reused')} reused")
    return 0


def _reuse_for_merge(ctx: Context, opts: BuildOptions, plan) -> list[Outcome]:
    from mlops.services.fanout import check_carries_out

    signing = _signing(ctx, opts)
    planned = _make_plan(ctx, replace(opts, components=tuple(plan.reused())))
    check_carries_out(plan, planned.head, planned.plan)
    gone = [p for p in planned.plan if p.action != REUSE]
    if gone:
        raise BuildError(f"{gone[0].name} was planned for reuse, but {gone[0].reason}; "
                         "plan again")
    outcomes = _carry_out(ctx, planned, planned.plan, signing, opts)
    _raise_if_failed(outcomes)
    return outcomes
