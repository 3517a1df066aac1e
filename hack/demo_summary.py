"""The demo's closing summary, from the records it left in its directory.

    python3 hack/demo_summary.py --demo DIR --show NAME --start EPOCH

Reads the build record, the run record, the release.yaml files of the demo
clone (pulled after the last commit), the analysis decision records, the
load counts and the demo-only config change; prints what was built, the
release and its gates, each canary step, the approval and the final state.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def release(work: Path, env: str) -> dict[str, Any]:
    return yaml.safe_load((work / "environments" / env / "release.yaml").read_text())


def built(demo: Path, run: dict[str, Any]) -> list[str]:
    record = load_json(demo / "build.json")
    lines = [f"source commit {record['source_commit'][:12]}, registry {record['registry']}"]
    lines += [f"  {b['component']:<11} {b['status']:<7} {b['image']}@{b['digest'][:19]}..."
              for b in record["builds"]]
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(run["metrics"].items()))
    lines.append(f"pipeline {run['pipeline']} compiled as {run['version']}, run locally: "
                 f"{metrics}")
    lines.append(f"model: {run['model_uri']}")
    retrained = load_json(demo / "run2.json")
    lines.append(f"retrained: {retrained['model_uri']} (metrics "
                 + ", ".join(f"{k} {v:.3f}" for k, v in sorted(retrained["metrics"].items()))
                 + ")")
    return lines


def gates(record: dict[str, Any]) -> list[str]:
    return [f"    {g['result']:<4} {g['gate']}: {g['detail']}"
            for g in record.get("gates") or []]


def metric_line(name: str, measurements: list[dict[str, Any]], verdict: str) -> str:
    passed = sum(m["verdict"] == "pass" for m in measurements)
    ratios = [m["value"] / m["baseline"] for m in measurements
              if m.get("value") is not None and m.get("baseline")]
    values = [m["value"] for m in measurements if m.get("value") is not None]
    requests = [m["requests"] for m in measurements if m.get("requests") is not None]
    if ratios:
        seen = f"at most {max(ratios):.2f}x the stable revision's"
    else:
        seen = f"values at most {max(values):.3g}" if values else "no data"
    if requests:
        seen += f", {min(requests):.0f}+ requests a window"
    return f"      {verdict:<4} {name}: {passed}/{len(measurements)} measurements passed ({seen})"


def step(canary: Path, percent: int, load: dict[str, Any], fleet: dict[str, Any]) -> list[str]:
    decision = load_json(canary / f"analysis-{percent}.json")
    by_rev = load.get(str(percent), {})
    sent = {role: sum(by_rev.get(fleet[role]["revision"], {}).values())
            for role in ("canary", "stable")}
    codes = sorted({code for counts in by_rev.values() for code in counts})
    lines = [f"  {percent}%: analysis {decision['result']} ({decision['started'][11:19]}-"
             f"{decision['finished'][11:19]} UTC); load {sent['canary']} canary + "
             f"{sent['stable']} stable predictions, HTTP {'/'.join(codes) or '-'}"]
    for m in decision["metrics"]:
        taken = [x for x in decision["measurements"] if x["metric"] == m["metric"]]
        lines.append(metric_line(m["metric"], taken, m["result"]))
    lines += [f"      {g['result']:<4} {g['gate']} (offline): {g['detail']}"
              for g in decision["offline"]]
    return lines


def canary_lines(demo: Path, prod: dict[str, Any]) -> list[str]:
    canary = demo / "canary"
    fleet, load = load_json(canary / "fleet.json"), load_json(canary / "load.json")
    image = fleet["canary"]["image"].rsplit("/", 1)[-1]
    lines = [f"prod canary: local serve containers as the revisions of {fleet['namespace']}/"
             f"{fleet['service']}, {fleet['rate']:g} predictions/s split between them",
             f"  canary {fleet['canary']['revision']}: {image[:25]}..., the release's model",
             f"  stable {fleet['stable']['revision']}: the same image, the first release's "
             "model"]
    for percent in prod["rollout"]["steps"]:
        lines += step(canary, percent, load, fleet)
    approval = prod.get("approval") or {}
    lines.append(f"  100%: approved by {approval.get('approver')} (signed commit "
                 f"{str(approval.get('commit'))[:12]}, verified against the allowed signers)")
    return lines


def history(work: Path) -> list[dict[str, Any]]:
    """`mlops history --json` of the demo clone, oldest first."""
    proc = subprocess.run([sys.executable, "-m", "mlops", "history", "--repo", str(work),
                           "--json"], capture_output=True, text=True, check=True)
    return list(reversed(json.loads(proc.stdout)["entries"]))


def first_release_lines(entries: list[dict[str, Any]]) -> list[str]:
    firsts = [e for e in entries if e.get("note")]
    return [f"prod's first release {e['release']}: 100% at once ({e['note']}), approved by "
            f"{e['approver']}" for e in firsts]


def provenance_lines(demo: Path, entries: list[dict[str, Any]]) -> list[str]:
    """Where signed provenance was verified (from the commits' trailers), and the refusal."""
    lines = ["provenance (SSH-signed SLSA statements, attached as sha256-<digest>.att):"]
    for e in entries:
        if e.get("provenance"):
            builders = ", ".join(sorted(set(e["provenance"].values())))
            lines.append(f"  {e['action']} {e['env']}: {len(e['provenance'])} images verified, "
                         f"built by {builders}")
    tampered = load_json(demo / "tampered.json")
    lines.append(f"  tampered {tampered['component']} ({tampered['digest'][:19]}...): refused "
                 f"with exit {tampered['exit']}")
    return lines


def demo_only(demo: Path, show: str) -> str:
    change = load_json(demo / "demo-config.json")
    first = change["analysis"][0]
    before, after = first["before"], first["after"]
    text = (f"demo-only commit in {show}/work (not in this repo): release manager "
            f"{change['principal']}\n  (key {show}/release-manager_ed25519), builder "
            f"{change.get('builder')}; "
            f"{change['env']} canary analysis {after['count']} x {after['interval']} "
            f"(repo: {before['count']} x {before['interval']})")
    if before.get("min_requests") != after.get("min_requests"):
        text += f", min_requests {after['min_requests']} (repo: {before['min_requests']})"
    return text


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", type=Path, required=True)
    p.add_argument("--show", required=True, help="the demo directory, as shown to the user")
    p.add_argument("--start", type=float, required=True, help="epoch seconds the demo began")
    args = p.parse_args(argv)
    demo, work = args.demo, args.demo / "work"
    run = load_json(demo / "run.json")
    staging, prod = release(work, "staging"), release(work, "prod")
    state = prod.get("rollout") or {}
    lines = built(demo, run)
    lines += [f"release {staging['id']}", "  staging gates (dev -> staging):", *gates(staging),
              "  prod offline gates (staging -> prod):", *gates(prod)]
    entries = history(work)
    lines += first_release_lines(entries)
    lines += canary_lines(demo, prod)
    lines += provenance_lines(demo, entries)
    lines.append(f"prod: release {prod['id']} at {state.get('percent')}% (rollout "
                 f"{state.get('state')}), environments/prod/release.yaml on "
                 f"{args.show}/remote.git")
    lines.append(demo_only(demo, args.show))
    lines.append(f"total wall time {minutes(time.time() - args.start)} (setup included)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
