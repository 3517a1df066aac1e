"""`mlops rollout start|promote|abort --env ENV`: a KServe canary, moved by commits.

`start` writes the release from the previous environment into the overlay
with `canaryTrafficPercent` at the first step (a first release, with no
stable one to compare against, goes to 100% at once, gated and approved);
`promote` moves to the next step, or to 100% by removing it, after a passing
`rollout analyze` (and, for 100%, a release manager's signed approval);
`abort` puts the previous release back at 0% and sets the hold. Each is one
commit, pushed for Argo CD to sync, made in an isolated clone like `mlops promote`
(`mlops.services.canary` does the work).
"""

from __future__ import annotations

from mlops.commands import Context
from mlops.core.decision import gates_text
from mlops.services import decisions as records
from mlops.services.canary import (
    RolloutOptions,
    abort_canary,
    aborted_text,
    promote_step,
    promoted_text,
    start_rollout,
    started_text,
)

__all__ = ["RolloutOptions", "abort", "promote", "start"]


def start(ctx: Context, opts: RolloutOptions) -> int:
    doc = start_rollout(ctx, opts)
    ctx.out.result(doc, started_text(doc) + gates_text(doc.get("gates", [])))
    return 0


def promote(ctx: Context, opts: RolloutOptions) -> int:
    doc = promote_step(ctx, opts, records.load_decision(ctx.root, opts.env, opts.analysis))
    ctx.out.result(doc, promoted_text(doc))
    return 0


def abort(ctx: Context, opts: RolloutOptions) -> int:
    doc = abort_canary(ctx, opts)
    ctx.out.result(doc, aborted_text(doc))
    return 0
