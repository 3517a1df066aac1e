"""Running one attempt of a change in an isolated clone, retried while the remote moves on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mlops import config as cfg
from mlops.commands import Context
from mlops.gitops.workspace import PushRejected, Workspace, identity, remote_url
from mlops.retry import with_retries

T = TypeVar("T")
PUSH_ATTEMPTS = 20  # ten racers can each lose nine races; 20 bounds the wait (~40 s)


def in_workspace(
    ctx: Context,
    config: cfg.MlopsConfig,
    attempt: Callable[[Workspace], T],
    who: dict[str, str] | None = None,
) -> T:
    """Clone the remote branch, run `attempt`, and on a rejected push refetch and rerun."""
    url = remote_url(ctx.root, config.git.remote)
    with Workspace(url, config.git.branch, reference=ctx.root,
                   who=who or identity(ctx.root), note=ctx.out.note) as ws:

        def refresh(n: int, exc: BaseException) -> None:
            ctx.out.note(f"the remote moved on; recomputing on its new head (attempt {n + 1})")
            ws.refresh()

        return with_retries(
            lambda: attempt(ws),
            lambda exc: isinstance(exc, PushRejected),
            attempts=PUSH_ATTEMPTS,
            initial=0.1,
            max_wait=2.0,
            on_retry=refresh,
        )
