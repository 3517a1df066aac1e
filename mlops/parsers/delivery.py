"""`mlops build`, `compile` and `run`: from source to images, pipelines and a model."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.parsers import Subcommands, add, common, key_value, positive, shard_index


def _add_build(sub: Subcommands) -> None:
    p = add(
        sub,
        "build",
        description=(
            "Build every component under components/ whose input hash has no image in the "
            "registry yet; run its test command in the fresh image; push it with the tags "
            "<version>, <version>-<short commit> and ih-<input hash>; record digests."
        ),
    )
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="only these components")
    p.add_argument("--dry-run", action="store_true", help="print the plan; touch no Docker")
    _add_build_inputs(p)
    _add_signing(p)
    _add_fanout(p)
    common(p)
    p.set_defaults(handler=_run_build)


def _add_build_inputs(p: argparse.ArgumentParser) -> None:
    """What to build and push, how, and where the record goes."""
    push = p.add_mutually_exclusive_group()
    push.add_argument(
        "--push",
        dest="push",
        action="store_true",
        default=True,
        help="push images to the registry (default)",
    )
    push.add_argument(
        "--no-push", dest="push", action="store_false", help="build and test locally only"
    )
    p.add_argument(
        "--changed-since",
        metavar="REF",
        help="only components whose inputs changed since this git ref",
    )
    p.add_argument(
        "--build-arg",
        metavar="KEY=VALUE",
        action="append",
        type=key_value,
        default=[],
        help="override a build arg for this run (repeatable)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", type=Path,
        help="write the build record (JSON) here; with --plan alone, the plan"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=positive,
        metavar="N",
        help="parallel builds (default: build.jobs in mlops.yaml, else 2)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if an image exists")


def _add_signing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sign-key", metavar="FILE", type=Path,
                   help="SSH private key that signs each image's provenance, attached in the "
                        "registry as sha256-<digest>.att (default: $MLOPS_SIGNING_KEY)")
    p.add_argument("--builder", metavar="PRINCIPAL",
                   help="the key's principal in the allowed signers, listed as a builder in "
                        "mlops.yaml approvals.builders (default: $MLOPS_BUILDER)")


def _add_fanout(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "fan-out over CI runners",
        "plan once, build each shard on its own runner, merge the parts into one build "
        "record (docs/fan-out-builds.md)")
    group.add_argument("--plan", nargs="?", const=True, metavar="FILE",
                       help="alone: plan the shards (write the plan with --output, print it "
                            "with --json) and build nothing; with --shard or --merge: the "
                            "plan to carry out")
    group.add_argument("--shards", type=positive, default=None, metavar="N",
                       help="with --plan: at most N shards, balanced by size (default: 1)")
    group.add_argument("--timings", metavar="FILE", type=Path,
                       help="with --plan: a past build record whose build times weigh the "
                            "shards (default: build-context bytes)")
    group.add_argument("--shard", type=shard_index, metavar="K",
                       help="build shard K of --plan FILE and write its part with --output")
    group.add_argument("--merge", nargs="*", type=Path, metavar="PART",
                       help="merge the shards' parts of --plan FILE into one build record "
                            "(--output); reused images are tagged and taken from the registry")


def _run_build(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.build import BuildOptions, build

    fanout = _fanout_options(args)  # first: it may move --plan's value into the components
    return build(
        ctx,
        BuildOptions(
            components=tuple(args.components),
            dry_run=args.dry_run,
            push=args.push,
            changed_since=args.changed_since,
            build_args=dict(args.build_arg),
            output=args.output,
            jobs=args.jobs,
            force=args.force,
            sign_key=args.sign_key,
            builder=args.builder,
            **fanout,
        ),
    )


def _fanout_options(args: argparse.Namespace) -> dict:
    """`--plan` alone plans; with a value it names the plan file of --shard or --merge.
    `--plan a b` without those reads `a` as a component, as `mlops build a b` would."""
    carrying_out = args.shard is not None or args.merge is not None
    plan_file = args.plan if isinstance(args.plan, str) else None
    if plan_file is not None and not carrying_out:
        from mlops import names
        from mlops.errors import UsageError

        if names.COMPONENT_NAME.match(plan_file) is None:  # `--plan plan.json`: a file
            raise UsageError(f"--plan {plan_file}: a plan file is carried out with --shard N "
                             "or --merge; to make a plan, give --plan alone (and --output "
                             "FILE)")
        args.components.insert(0, plan_file)
        plan_file = None
    return {"plan": args.plan is not None and not carrying_out,
            "plan_file": Path(plan_file) if plan_file else None, "shards": args.shards,
            "timings": args.timings, "shard": args.shard,
            "merge": tuple(args.merge) if args.merge is not None else None}


def _add_compile(sub: Subcommands) -> None:
    p = add(
        sub,
        "compile",
        description=(
            "Compile pipelines/<PIPELINE>.py with the kfp SDK into Kubeflow Pipelines' "
            "Pipeline + PipelineVersion resources under environments/<env>/pipelines/, "
            "listed in the overlay's kustomization. Component images resolve to the "
            "digests pinned in the overlay, or in a build record with --build. An "
            "unchanged pipeline is not recompiled."
        ),
    )
    p.add_argument("pipelines", nargs="*", metavar="PIPELINE", help="only these pipelines")
    p.add_argument("--env", required=True, help="environment whose overlay to write")
    p.add_argument(
        "--build",
        metavar="FILE",
        type=Path,
        help="take images from this build record instead of the overlay's pins",
    )
    p.add_argument("--force", action="store_true", help="recompile even if nothing changed")
    common(p)
    p.set_defaults(handler=_run_compile)


def _run_compile(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.compile import CompileOptions, compile_pipelines

    return compile_pipelines(
        ctx,
        CompileOptions(
            env=args.env, pipelines=tuple(args.pipelines), build=args.build, force=args.force
        ),
    )


def _add_run(sub: Subcommands) -> None:
    p = add(
        sub,
        "run",
        description=(
            "Run environments/<env>/pipelines/<PIPELINE>.yaml, exactly as compiled, with "
            "kfp.local's Docker runner on the pinned images. Writes metrics.json, the model "
            "and run.json to --output-dir (default .mlops/runs/<run-id>/, a folder per run)."
        ),
    )
    p.add_argument("pipeline", metavar="PIPELINE")
    p.add_argument("--env", required=True, help="environment whose compiled pipeline to run")
    p.add_argument(
        "--local",
        action="store_true",
        required=True,
        help="run on this machine with Docker (the only mode so far)",
    )
    p.add_argument("--output-dir", metavar="DIR", type=Path, help="where to put the outputs")
    p.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        type=key_value,
        default=[],
        help="a pipeline parameter (repeatable)",
    )
    common(p)
    p.set_defaults(handler=_run_run)


def _run_run(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.run import RunOptions, run

    return run(
        ctx,
        RunOptions(
            pipeline=args.pipeline,
            env=args.env,
            local=args.local,
            output_dir=args.output_dir,
            params=dict(args.param),
        ),
    )




def register(sub: Subcommands) -> None:
    sub.lazy("build", "build, test and push components whose inputs changed", _add_build)
    sub.lazy("compile", "compile pipelines into an environment's overlay, images pinned by "
             "digest", _add_compile)
    sub.lazy("run", "run a compiled pipeline locally on the pinned images", _add_run)
