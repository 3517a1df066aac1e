"""Reading the trust root: pinned in a file outside the branch, or settled over its history.

`mlops.trust` decides; this module fetches what it decides on: the
`approvals:` section of `mlops.yaml` and the allowed-signers file at every
commit that changed either (on all parents), and each such commit's signature.
"""

from __future__ import annotations

import functools
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from mlops import schema, trust
from mlops.adapters import safeyaml
from mlops.adapters.gitops.workspace import Workspace
from mlops.config import (
    CONFIG_FILE,
    TRUST_ROOT_ENV,
    Approvals,
    MlopsConfig,
    approvals_from_text,
    gated_from_text,
)
from mlops.errors import ConfigError

if TYPE_CHECKING:
    from mlops.envconfig import Environment

PINNED_KEYS = ("allowed_signers", "release_managers", "builders", "approval_environments")
MAX_PINNED_BYTES = 1 << 20


# A pinned root as read when its workspace was made, before any branch code ran (a
# pipeline compiled later runs with the promoter's rights and could rewrite the file).
_PINNED_EARLY: weakref.WeakKeyDictionary[Workspace, trust.TrustRoot] = \
    weakref.WeakKeyDictionary()


# Each pinned root as read before this process ran any branch code: a later workspace
# (a retry, or the next step of `rollout run`) must not read a file that code could
# have rewritten since.
_PINNED_FIRST: dict[Path, trust.TrustRoot] = {}


def pin_early(ws: Workspace, config: MlopsConfig, branch_code_ran: bool = False) -> None:
    """Read the pinned root now, for `resolve` to use in `ws` whatever happens to the file;
    once branch code has run in this process, the copy read before it."""
    if config.trust_root is None:
        return
    path = Path(config.trust_root).absolute()
    root = _PINNED_FIRST.get(path) if branch_code_ran else None
    if root is None:
        root = read_pinned(config.trust_root)
        if not branch_code_ran:
            _PINNED_FIRST[path] = root
    _PINNED_EARLY[ws] = root


# The root settled from `ws`'s history, by the workspace's generation: a promotion asks
# two or three times at one HEAD (whether approval is needed, the approval, provenance).
_SETTLED: weakref.WeakKeyDictionary[Workspace, tuple[int, trust.TrustRoot]] = \
    weakref.WeakKeyDictionary()


def resolve(ws: Workspace, config: MlopsConfig) -> trust.TrustRoot:
    """The trust root in force for promotions made in `ws`."""
    if config.trust_root is not None:
        early = _PINNED_EARLY.get(ws)
        return early if early is not None else read_pinned(config.trust_root)
    settled = _SETTLED.get(ws)
    if settled is not None and settled[0] == ws.generation:
        return settled[1]
    root = trust.settle(_changes(ws), lambda sha, state: _signer(ws, sha, state))
    _SETTLED[ws] = (ws.generation, root)
    return root


def approval_needed(ws: Workspace, config: MlopsConfig, env: Environment) -> bool:
    """Whether entering `env` needs an approval: as the trust root has it (so an unsigned
    commit cannot drop it), or as the branch's mlops.yaml asks (which only tightens)."""
    return env.approval or env.name in resolve(ws, config).state.gated


def in_force(root: trust.TrustRoot, commits: bool) -> trust.InForce:
    """The root's allowed signers as they stand now (`trust.in_force`): `commits` for
    `git verify-commit`, else for ssh-keygen -Y verify (provenance)."""
    return root.state.signers_at(time.time(), commits)


def signers_file(ws: Workspace, signers: trust.InForce) -> Path:
    """`signers` as a file git and ssh-keygen can read, beside the workspace's clone; one
    file per use, so that a check for commits and one for provenance never share it."""
    name = "trusted_allowed_signers" + ("_for_commits" if signers.commits else "")
    path = ws.path / name
    path.write_text(signers.text())
    return path


def read_pinned(path: Path) -> trust.TrustRoot:
    display = f"${TRUST_ROOT_ENV} ({path})"
    try:
        raw = path.read_bytes()[: MAX_PINNED_BYTES + 1]
    except OSError as exc:
        raise ConfigError(f"{display}: cannot read the trust root: {exc.strerror}") from None
    if len(raw) > MAX_PINNED_BYTES:
        raise ConfigError(f"{display}: larger than {MAX_PINNED_BYTES} bytes")
    data = safeyaml.load(raw.decode("utf-8", errors="replace"), display)
    if not isinstance(data, dict) or set(data) - set(PINNED_KEYS):
        raise ConfigError(f"{display}: must be a mapping of {', '.join(PINNED_KEYS)}")
    signers = data.get("allowed_signers") or ""
    if not isinstance(signers, str):
        raise ConfigError(f"{display}: allowed_signers must be the allowed-signers text")
    state = trust.TrustState.of(
        signers,
        schema.string_list(data.get("release_managers") or [], f"{display}: release_managers"),
        schema.string_list(data.get("builders") or [], f"{display}: builders"),
        schema.string_list(data.get("approval_environments") or [],
                           f"{display}: approval_environments"))
    return trust.TrustRoot(state, f"pinned in {path}")


def _changes(ws: Workspace) -> list[trust.Change]:
    """Each commit, parents first, that changed mlops.yaml or any allowed-signers file it
    named, and every merge: the history on all parents, not only the first (a first parent
    may be a history of the pusher's making that merely includes the old tip)."""
    configs = [sha for sha, _ in ws.history([CONFIG_FILE])]
    paths = {Approvals().allowed_signers}
    for approvals in _approvals_at(ws, configs):
        if approvals is not None:
            paths.add(approvals.allowed_signers)
    history = ws.history([CONFIG_FILE, *sorted(paths)])
    commits = [sha for sha, _ in history]
    return [trust.Change(sha, state, parents) for (sha, parents), state
            in zip(history, _states_at(ws, commits), strict=True)]


def _approvals_at(ws: Workspace, commits: list[str]) -> list[Approvals | None]:
    texts = ws.show_many([f"{sha}:{CONFIG_FILE}" for sha in commits])
    return [_parse_approvals(text, sha) for sha, text in zip(commits, texts, strict=True)]


def _parse_approvals(text: bytes | None, sha: str) -> Approvals | None:
    if text is None:
        return Approvals()  # no mlops.yaml at that commit: nothing is trusted there
    return _approvals_of(text, sha)


@functools.lru_cache(maxsize=256)
def _approvals_of(text: bytes, sha: str) -> Approvals | None:
    """Memoized: `_changes` and `_states_at` read the same commits' files."""
    try:
        return approvals_from_text(text.decode("utf-8"), f"{CONFIG_FILE}@{sha[:10]}")
    except (ConfigError, UnicodeDecodeError):
        return None


def _states_at(ws: Workspace, commits: list[str]) -> list[trust.TrustState | None]:
    approvals = _approvals_at(ws, commits)
    specs = [f"{sha}:{a.allowed_signers if a else Approvals().allowed_signers}"
             for sha, a in zip(commits, approvals, strict=True)]
    configs = ws.show_many([f"{sha}:{CONFIG_FILE}" for sha in commits])
    states: list[trust.TrustState | None] = []
    for sha, a, signers, config in zip(commits, approvals, ws.show_many(specs), configs,
                                       strict=True):
        if a is None:
            states.append(None)
            continue
        text = signers.decode("utf-8", errors="replace") if signers is not None else None
        gated = _gated_of(config, sha) if config is not None else ()
        states.append(trust.TrustState.of(text, a.release_managers, a.builders, gated))
    return states


@functools.lru_cache(maxsize=256)
def _gated_of(text: bytes, sha: str) -> tuple[str, ...]:
    """Memoized, and parsed as the configuration is, so that what counts as `approval:
    true` here is what the branch's own mlops.yaml means by it."""
    try:
        return gated_from_text(text.decode("utf-8"), f"{CONFIG_FILE}@{sha[:10]}")
    except (ConfigError, UnicodeDecodeError):
        return ()


def _signer(ws: Workspace, sha: str, state: trust.TrustState) -> tuple[str | None, str]:
    """Who signed `sha`, among the keys of `state` in force now (not at the commit's own
    date, which its signer wrote: `trust.in_force`)."""
    signers = state.signers_at(time.time(), commits=True)
    path = ws.path / f"signers-before-{sha[:12]}"
    path.write_text(signers.text())
    try:
        principal, why = ws.verify_commit(sha, path)
    finally:
        path.unlink(missing_ok=True)
    return principal, why if principal is not None else why + signers.note()
