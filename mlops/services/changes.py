"""Running one attempt of a change in an isolated clone, retried while the remote moves on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

from mlops import config as cfg
from mlops import trustroot
from mlops.adapters import compile_child
from mlops.adapters.gitops.workspace import PushRejected, Workspace, identity, remote_url
from mlops.adapters.retry import with_retries
from mlops.context import Context
from mlops.core.promotion import Change
from mlops.services.envdir import EnvDir

T = TypeVar("T")
PUSH_ATTEMPTS = 20  # ten racers can each lose nine races; 20 bounds the wait (~40 s)


def in_workspace(
    ctx: Context,
    config: cfg.MlopsConfig,
    attempt: Callable[[Workspace], T],
    who: dict[str, str] | None = None,
) -> T:
    """Clone the remote branch, run `attempt`, and on a rejected push refetch and rerun.

    An attempt that ran the branch's pipeline code leaves a clone that code could
    have rewritten (its `.git`, or the user's clone it borrows objects from), so
    the retry after it, and any workspace made once branch code has run in this
    process (`rollout run`'s next step), works in a new clone that borrows
    nothing, with the pinned trust root as read before that code ran.
    """
    url = remote_url(ctx.root, config.git.remote)
    with contextlib.ExitStack() as stack:
        def clone() -> Workspace:
            ran = compile_child.runs > 0  # branch code ran in this process: borrow nothing
            ws = stack.enter_context(Workspace(url, config.git.branch,
                                               reference=None if ran else ctx.root,
                                               who=who or identity(ctx.root),
                                               note=ctx.out.note))
            trustroot.pin_early(ws, config, ran)  # as read before any branch code ran
            return ws

        ws, runs = clone(), compile_child.runs

        def run() -> T:
            nonlocal runs
            runs = compile_child.runs
            return attempt(ws)

        def refresh(n: int, exc: BaseException) -> None:
            nonlocal ws
            ctx.out.note(f"the remote moved on; recomputing on its new head (attempt {n + 1})")
            if compile_child.runs != runs:
                ws.close()
                ws = clone()
            else:
                ws.refresh()

        try:
            return with_retries(
                run,
                lambda exc: isinstance(exc, PushRejected),
                attempts=PUSH_ATTEMPTS,
                initial=0.1,
                max_wait=2.0,
                on_retry=refresh,
            )
        except PushRejected as exc:
            raise PushRejected(f"{exc.message} (gave up after {PUSH_ATTEMPTS} attempts)") \
                from None


def commit_change(ws: Workspace, change: Change, ref: str | None = None) -> str:
    """Write the record the core decided, commit once, push; the commit's sha.

    The overlay was written (and rendered) before the core decided; the record
    comes last so that a refusal leaves nothing of it behind, and a rejected
    push reruns the whole attempt on the new head (`in_workspace`).
    """
    EnvDir(ws.root, change.record.environment).write_record(change.record)
    sha = ws.commit(change.message)
    ws.push(ref, sha)
    return sha
