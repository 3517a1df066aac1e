"""The demo's own change to its clone: a release manager, and shorter canary windows.

    python3 hack/demo_config.py --repo CLONE --principal EMAIL --public-key KEY.pub \
        --env prod --interval 15s --count 3 --min-requests 20 --record OUT.json

Lists the principal with its public key in the allowed-signers file and in
`approvals.release_managers` (and, with --builder, the CI builder whose key
signed the build's provenance, in `approvals.builders`), and sets every analysis metric of the
environment's canary to measure `count` times, `interval` apart (with
`min_requests` lowered to at most the given number, to fit the shorter
window). mlops.yaml is edited with ruamel's round trip, so comments and the
rest of the file stay as they are. What changed goes to stdout and, as JSON,
to --record (for the demo's summary). Only for the demo clone: the
repository's own mlops.yaml keeps its real values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


def yaml_rt() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def add_release_manager(doc: CommentedMap, repo: Path, principal: str, key: str,
                        role: str = "release_managers") -> str:
    """List `principal` with `key` under `approvals.<role>`; return the allowed-signers path."""
    approvals = doc.setdefault("approvals", CommentedMap())
    managers = approvals.get(role)
    if not isinstance(managers, list):
        managers = approvals[role] = CommentedSeq()
    if principal not in managers:
        managers.append(principal)
    managers.fa.set_flow_style()
    signers = str(approvals.get("allowed_signers") or ".mlops/allowed_signers")
    path = repo / signers
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [line for line in (path.read_text().splitlines() if path.exists() else [])
            if not line.startswith(f"{principal} ")]
    path.write_text("\n".join([*kept, f"{principal} {key}"]) + "\n")
    return signers


def shorten_analysis(doc: CommentedMap, env: str, interval: str, count: int,
                     min_requests: int) -> list[dict[str, Any]]:
    """Set each analysis metric's interval and count; lower min_requests to fit."""
    envs = [e for e in doc.get("environments") or [] if e.get("name") == env]
    canary = envs[0].get("canary") if envs else None
    if not canary:
        raise SystemExit(f"demo_config: environment {env} has no canary: in mlops.yaml")
    changes = []
    for metric in canary["analysis"]["metrics"]:
        before = {k: metric.get(k) for k in ("interval", "count", "min_requests")}
        metric["interval"], metric["count"] = interval, count
        if "min_requests" in metric:
            metric["min_requests"] = min(metric["min_requests"], min_requests)
        after = {k: metric.get(k) for k in before}
        changes.append({"metric": metric["name"], "before": before, "after": after})
    return changes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--principal", required=True)
    p.add_argument("--public-key", type=Path, required=True)
    p.add_argument("--env", default="prod")
    p.add_argument("--interval", default="15s")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--min-requests", type=int, default=20)
    p.add_argument("--record", type=Path, required=True)
    p.add_argument("--builder", help="the CI builder's principal, trusted for provenance")
    p.add_argument("--builder-key", type=Path, help="the builder's public key")
    args = p.parse_args(argv)
    y, config = yaml_rt(), args.repo / "mlops.yaml"
    doc = y.load(config.read_text())
    key = args.public_key.read_text().strip()
    signers = add_release_manager(doc, args.repo, args.principal, key)
    if args.builder:
        builder_key = args.builder_key.read_text().strip()
        add_release_manager(doc, args.repo, args.builder, builder_key, role="builders")
    changes = shorten_analysis(doc, args.env, args.interval, args.count, args.min_requests)
    with open(config, "w") as f:
        y.dump(doc, f)
    print(f"  {signers}: {args.principal} {key.split()[0]} ...")
    print(f"  mlops.yaml approvals.release_managers: [{args.principal}]")
    if args.builder:
        print(f"  {signers}, mlops.yaml approvals.builders: {args.builder} (the key that "
              "signed the build's provenance)")
    for c in changes:
        before, after = c["before"], c["after"]
        diff = ", ".join(f"{k} {before[k]} -> {after[k]}" for k in before
                         if before[k] != after[k])
        print(f"  mlops.yaml {args.env} canary analysis {c['metric']}: {diff}")
    args.record.write_text(json.dumps({"principal": args.principal, "allowed_signers": signers,
                                       "builder": args.builder,
                                       "env": args.env, "analysis": changes}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
