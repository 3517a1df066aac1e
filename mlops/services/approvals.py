"""Release managers' approvals: read and verified before any branch code runs, matched after.

A promotion compiles the branch's pipeline files, and that code runs with the
promoter's rights: it can rewrite the workspace clone's `.git` (replace refs, a
shallow file, its objects) so that what git reads afterwards is the attacker's.
So everything an approval depends on is read from git first (`gather`): which
commits name an approval for the environment, who signed them, their shape and
message, whether they came after a hold. What is left once the release is
known, possibly only after compiling (its id covers the compiled pipelines), is
pure: `Approvals.of(release)` compares it with what was read.
"""

from __future__ import annotations

from collections.abc import Callable

from mlops import release as rel
from mlops import trailers, trustroot
from mlops.adapters.gitops.workspace import Workspace
from mlops.core import revocations
from mlops.errors import ApprovalError
from mlops.records import dataclass
from mlops.services import envhistory
from mlops.services.envdir import EnvDir


@dataclass(frozen=True)
class Candidate:
    """A commit that names an approval of `release_id` for the environment."""

    sha: str
    release_id: str
    approver: str | None  # the verified signer, a release manager; None: `problem` says why
    problem: str | None  # why it approves nothing, whatever the release
    digest: str | None  # its Mlops-Approve-Digest trailer
    named: str  # its Mlops-Approver trailer, as the message `mlops approve` writes has it
    message: str  # as git stores it


@dataclass(frozen=True)
class Approvals:
    """What the history says about approvals for one environment, read before branch code."""

    env: str
    candidates: tuple[Candidate, ...] = ()
    error: str | None = None  # no release manager can approve at all (no signers)

    def of(self, release: rel.Release, evidence: str = "") -> dict[str, str]:
        """{"approver", "commit"} of the newest approval of exactly `release`, else
        ApprovalError with the command that gives one and why each candidate failed."""
        if self.error is not None:
            raise ApprovalError(self.error)
        reasons = []
        for found in self.candidates:
            if found.release_id != release.id:
                continue
            problem = found.problem or _not_this_release(found, self.env, release)
            if problem is None and found.approver is not None:
                return {"approver": found.approver, "commit": found.sha}
            reasons.append(f"{found.sha[:10]}: {problem}")
        why = "; ".join(reasons) if reasons else "none found"
        raise ApprovalError(
            f"{self.env} needs a release manager's signed approval of {release.id} "
            f"(`mlops approve --env {self.env} --release {release.id} --digest "
            f"{release.digest}{evidence}`): {why}"
        )


    def refusal(self, sha: str, release: rel.Release) -> str | None:
        """Why the commit `sha` does not approve `release` (None: it does)."""
        if self.error is not None:
            return self.error
        found = next((c for c in self.candidates if c.sha == sha), None)
        if found is None or found.release_id != release.id:
            return f"{sha[:10]} names no approval of {release.id} for {self.env}"
        return found.problem or _not_this_release(found, self.env, release)


def gather(ws: Workspace, config, target, release_id: str | None = None,
           after_hold: bool = True) -> Approvals:
    """The approvals for `target` in `ws`'s history, each verified: of `release_id` only,
    or of any release when it is not known yet (it is known after compiling).

    Who counts comes from the trust root (`mlops.trustroot`), not from the branch
    head: a key added by an unsigned commit approves nothing. What counts is a
    commit as `mlops approve` makes it (`_not_an_approval`), bound to the
    release's full digest, and given after the environment's hold, if it is on
    hold (a rollback passes `after_hold=False`: it may put back, while held, what
    was approved before the hold).
    """
    root = trustroot.resolve(ws, config)
    if not root.state.signers:
        return Approvals(target.name, error=(
            f"no allowed signers in the trust root ({root.origin}; "
            f"{config.approvals.allowed_signers} on the branch): no release manager can approve"))
    in_force = trustroot.in_force(root, commits=True)
    signers = trustroot.signers_file(ws, in_force)
    since_hold = _commits_after_hold(ws, target.name) if after_hold else None
    lapsed = _lapsed(ws, target.name)
    found = []
    for commit in ws.log():
        named = commit.trailer(trailers.APPROVE)
        if (named is None or commit.trailer(trailers.ENVIRONMENT) != target.name
                or (release_id is not None and named != release_id)):
            continue
        principal, detail = ws.verify_commit(commit.sha, signers)
        tree, parents, message = ws.raw_commit(commit.sha)
        named_approver = commit.trailer(trailers.APPROVER) or ""
        if principal is None:
            problem: str | None = detail + in_force.note()
        elif principal not in root.state.release_managers:
            problem = f"{principal} is not a release manager"
        else:
            problem = (_not_an_approval(ws, tree, parents)
                       or _not_by(principal, named_approver)
                       or _given_before_hold(commit.sha, target.name, since_hold)
                       or lapsed(commit.sha, named))
        found.append(Candidate(commit.sha, named, principal if problem is None else None,
                               problem, commit.trailer(trailers.APPROVE_DIGEST),
                               named_approver, message))
    return Approvals(target.name, tuple(found))


def find_approval(ws: Workspace, config, target, release: rel.Release,
                  evidence: str = "", after_hold: bool = True) -> dict[str, str]:
    """`gather` and `of` at once, for a release known before any branch code runs."""
    return gather(ws, config, target, release.id, after_hold).of(release, evidence)


def _not_an_approval(ws: Workspace, tree: str, parents: list[str]) -> str | None:
    """Why a signed commit naming a release is not an approval, whatever the release.

    Only the commit `mlops approve` makes counts: one parent and its parent's
    tree (it changes no file); `_not_this_release` checks its message. A signed
    commit that merely ends in the trailers (a cherry-pick or rebase by a
    manager who signs every commit) is not consent.
    """
    if len(parents) != 1:
        return f"has {len(parents)} parents; an approval (`mlops approve`) has one"
    if ws.tree_of(parents[0]) != tree:
        return "changes files; an approval (`mlops approve`) changes none"
    return None


def _not_by(principal: str, named: str) -> str | None:
    """An approval names its approver (history shows that name): the one who signed it."""
    if named == principal:
        return None
    return f"names {named or 'no one'} as approver but {principal} signed it"


def _not_this_release(found: Candidate, env: str, release: rel.Release) -> str | None:
    """Why an approval naming `release.id` does not approve `release`: the digest it is
    bound to, and exactly the message `mlops approve` writes."""
    if found.digest is None:
        return "names no release digest (an approval older than digests); approve again"
    if found.digest != release.digest:
        return (f"approves another release with the same id ({found.digest}, this one is "
                f"{release.digest}); approve again")
    if found.message != trailers.approval_message(env, release.id, found.named, release.digest):
        return "its message is not the one `mlops approve` writes"
    return None


def _lapsed(ws: Workspace, env: str) -> Callable[[str, str], str | None]:
    """(approval commit, release id) -> why the approval lapsed, as a rollback or abort of
    that release in `env` revoked it (mlops.core.revocations), or None."""
    found = envhistory.revocations_in(ws, env)
    is_ancestor = envhistory.ancestry(ws)

    def why(sha: str, release_id: str) -> str | None:
        standing = revocations.standing_revocation(sha, release_id, found, is_ancestor)
        return None if standing is None else revocations.refusal(standing, env)
    return why


def _commits_after_hold(ws: Workspace, env: str) -> set[str] | None:
    """While `env`'s record (at HEAD) holds it, the first-parent commits after the last one
    that wrote the record (the rollback that set the hold); None when it is not on hold."""
    where = EnvDir(ws.root, env)
    text = ws.show("HEAD", where.record_display)
    if text is None or not where.parse_record(text, where.record_display).hold:
        return None
    line = ws.first_parent_commits([])
    held = ws.first_parent_commits([where.record_display])
    return set(line[line.index(held[-1]) + 1:]) if held else set(line)


def _given_before_hold(sha: str, env: str, after_hold: set[str] | None) -> str | None:
    if after_hold is None or sha in after_hold:
        return None
    return (f"given before {env} was put on hold; a held environment takes only an "
            "approval given after its hold was set (approve again)")
