#!/usr/bin/env python3
"""Compile time of the example pipelines, cold (forced) against warm (cached).

DESIGN.md: recompiling unchanged pipelines does no kfp compile at all (a cache
keyed by input hash). This measures `mlops compile --env dev` on a copy of
this repository's pipelines, as a fresh CLI process and in-process, and checks
that a warm run never even imports kfp.

Usage: python3 benchmarks/compile.py [--repeat N] [--no-readme]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import common

NAME = "compile"


def make_repo(tmp: Path) -> tuple[Path, Path]:
    repo = tmp / "repo"
    shutil.copytree(
        common.REPO_ROOT / "pipelines",
        repo / "pipelines",
        ignore=shutil.ignore_patterns("__pycache__", "*.golden.yaml"),
    )
    for env in ("base", "dev", "staging", "prod"):
        src = common.REPO_ROOT / "environments" / env / "kustomization.yaml"
        (repo / "environments" / env).mkdir(parents=True)
        shutil.copy(src, repo / "environments" / env / "kustomization.yaml")
    builds = []
    for comp in ("preprocess", "train", "evaluate", "serve"):
        folder = repo / "components" / comp
        folder.mkdir(parents=True)
        shutil.copy(common.REPO_ROOT / "components" / comp / "component.yaml", folder)
        shutil.copy(common.REPO_ROOT / "components" / comp / "Dockerfile", folder)
        digest = "sha256:" + hashlib.sha256(comp.encode()).hexdigest()
        builds.append(
            {
                "component": comp,
                "image": f"registry.example.com/mlops/{comp}",
                "tags": ["0.1.0"],
                "digest": digest,
            }
        )
    (repo / "mlops.yaml").write_text(
        "registry: registry.example.com/mlops\n"
        "environments:\n  - name: dev\n  - name: staging\n"
        "  - name: prod\n"
    )
    build = tmp / "build.json"
    build.write_text(json.dumps({"source_commit": None, "builds": builds}))
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "x"],
    ):
        subprocess.run(argv, cwd=repo, check=True)
    return repo, build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-compile-") as tmp:
        repo, build = make_repo(Path(tmp))
        base = ["compile", "--env", "dev", "--build", str(build), "--repo", str(repo)]
        cli = [sys.executable, "-m", "mlops", *base]
        timings = [
            common.measure(
                "cold: mlops compile --force (fresh process)",
                lambda: common.run([*cli, "--force"], capture=True),
                args.repeat,
            ),
            common.measure(
                "warm: mlops compile, nothing changed (fresh process)",
                lambda: common.run(cli, capture=True),
                args.repeat,
            ),
        ]
        from mlops.cli import main as mlops_main

        def in_process(extra: list[str]) -> None:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                assert mlops_main([*base, *extra]) == 0

        timings += [
            common.measure(
                "cold: in-process, --force",
                lambda: in_process(["--force"]),
                args.repeat,
                note="each pipeline compiles in a child process (mlops.adapters.compile_child)",
            ),
            common.measure(
                "warm: in-process, nothing changed", lambda: in_process([]), args.repeat
            ),
        ]
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from mlops.cli import main; "
                f"main({base!r}); print('KFP' if 'kfp' in sys.modules else 'NOKFP')",
            ],
            capture_output=True,
            text=True,
        )
        kfp_imported = "NOKFP" not in probe.stdout
    cold_cli, warm_cli, cold_in, warm_in = timings
    ratios = [
        common.target_row(
            "cold / warm (fresh process)",
            cold_cli.median / warm_cli.median,
            "warm does no kfp compile",
            not kfp_imported,
        ),
        common.target_row("cold / warm (in-process)", cold_in.median / warm_in.median, "—", True),
    ]
    print(common.text_table(common.TIMING_HEADERS, common.timing_rows(timings)))
    print()
    print(common.text_table(common.TARGET_HEADERS, ratios))
    print(f"\nwarm run imported kfp: {kfp_imported}")
    if not args.no_readme:
        m = common.machine()
        body = "\n".join(
            [
                "### Compile: cold against warm cache (the example pipelines)",
                "",
                "Target (DESIGN.md): recompiling unchanged pipelines does no kfp compile at all.",
                "",
                f"- Date: {m['date']}",
                f"- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']}",
                f"- Reproduce: `{common.command_line(__file__)}` (or `make bench`)",
                f"- Method: median of {args.repeat} runs after one warm-up, on a copy of "
                "`pipelines/` with a made-up build record. A warm run reads the compile cache "
                "(`.git/mlops/compile-cache.json`) and checks the written file's hash.",
                f"- A warm run imported kfp: **{'yes' if kfp_imported else 'no'}**",
                "",
                common.md_table(common.TIMING_HEADERS, common.timing_rows(timings)),
                "",
                common.md_table(common.TARGET_HEADERS, ratios),
            ]
        )
        common.write_section(NAME, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
