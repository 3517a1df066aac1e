"""`mlops approve --env ENV --release ID`: a release manager's signed consent, as a commit.

The approval is an empty commit signed with the release manager's SSH key
(git's gpg.format=ssh), with trailers naming the release and the environment.
`mlops promote` accepts it only if `git verify-commit` checks it against the
trust root's allowed signers and the signer is one of its release managers.

An approval binds to the release that enters the environment: the source
environment's release with the evidence the promotion attaches (`--metrics`,
`--model-uri`), which is a new id. So `approve` takes the same evidence
options as `promote`, recomputes that release, and refuses any other id; `mlops
promote --plan --json` prints it (`approval.release`). The commit carries the
release's full content digest too (`Mlops-Approve-Digest`): the 12-hex id is
for people, and two releases can be made to share one, so `--digest` pins the
content reviewed. A release the environment ran before can be approved again
too: what a rollback or an abort puts back needs an approval valid under
today's trust root. Before it is pushed, the new commit is checked as a
promotion will check it: an approval that would not count (a key the trust root
does not list, a principal that is not the key's) is refused, exit 4, and
nothing is pushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlops import config as cfg
from mlops import release as rel
from mlops import trailers, trustroot
from mlops.adapters.gitops.workspace import Workspace, identity, signing_key
from mlops.commands import Context
from mlops.core import rollout
from mlops.core.promotion import Source
from mlops.errors import ApprovalError, ConfigError, UsageError
from mlops.records import dataclass
from mlops.services import approvals
from mlops.services.changes import in_workspace
from mlops.services.envdir import EnvDir, environment
from mlops.services.evidence import read_metrics
from mlops.services.promotion import compose_release, with_evidence


@dataclass(frozen=True)
class ApproveOptions:
    env: str
    release: str
    key: Path | None = None
    principal: str | None = None
    metrics: Path | None = None
    model_uri: str | None = None
    digest: str | None = None  # the content the manager reviewed, when given


def approve(ctx: Context, opts: ApproveOptions) -> int:
    local = cfg.load_config(ctx.root, ctx.environ)
    target = environment(local, opts.env)
    key = _key(ctx, opts)
    who = identity(ctx.root)
    principal = opts.principal or who["email"]
    who = {**who, "email": principal}
    metrics = read_metrics(opts.metrics, ctx.root) if opts.metrics else None
    commit, release = in_workspace(
        ctx, local, lambda ws: _attempt(ctx, ws, target.name, opts, key, principal, metrics),
        who=who)
    doc = {"approved": opts.release, "digest": release.digest, "env": target.name,
           "approver": principal, "commit": commit, "images": release.image_refs(),
           "model_uri": release.model_uri, "metrics": dict(release.metrics)}
    ctx.out.result(doc, _human(doc))
    return 0


def _human(doc) -> str:
    """What was approved, spelled out: a release manager consents to content, not to a hash."""
    lines = [f"{doc['approver']} approved release {doc['approved']} for {doc['env']} "
             f"(commit {doc['commit'][:12]})"]
    lines += [f"  {name}: {ref}" for name, ref in sorted(doc["images"].items())]
    lines.append(f"  model: {doc['model_uri'] or '-'}")
    if doc["metrics"]:
        lines.append("  metrics: " + ", ".join(f"{k} {v:g}" for k, v in
                                               sorted(doc["metrics"].items())))
    return "\n".join(lines)


def _key(ctx: Context, opts: ApproveOptions) -> Path:
    key = opts.key or signing_key(ctx.root)
    if key is None:
        raise UsageError("no signing key: pass --key PATH (an SSH private key) "
                         "or set git's user.signingkey")
    if not key.expanduser().is_file():
        raise UsageError(f"signing key {key} not found")
    return key.expanduser().resolve()


def _in_canary(ws: Workspace, env: str, release_id: str) -> bool:
    """A canary of the release in `env` waits for this approval to reach 100%."""
    record = EnvDir(ws.root, env).read_record()
    return (record is not None and record.release.id == release_id
            and rollout.in_progress(record.rollout))


def _attempt(ctx, ws: Workspace, env: str, opts: ApproveOptions, key: Path, principal: str,
             metrics):
    config = cfg.load_config(ws.root, ctx.environ)
    release = _about_to_enter(ws, config, env, opts, metrics)
    _check_content(ws, config, env, release, opts, metrics)
    message = trailers.approval_message(env, opts.release, principal, release.digest)
    commit = ws.commit(message, allow_empty=True, signing_key=key)
    _check_counts(ws, config, env, commit, release, principal)
    ws.push()
    return commit, release


def _check_counts(ws: Workspace, config, env: str, commit: str, release, principal: str):
    """The approval is checked as a promotion will check it, before it is pushed: a key
    the trust root does not list, or a principal that is not the key's or not a release
    manager's, would otherwise be pushed, reported as done and refused at promotion."""
    problem = approvals.gather(ws, config, config.environment(env), release.id) \
        .refusal(commit, release)
    if problem is not None:
        root = trustroot.resolve(ws, config).origin  # settled already by gather
        raise ApprovalError(f"this approval by {principal} would not count: {problem} "
                            f"(trust root: {root}; if promotions pin another, pass it with "
                            "--trust-root); nothing was pushed")


def _about_to_enter(ws: Workspace, config, env: str, opts: ApproveOptions, metrics):
    """The release `opts.release` names: the canary waiting in `env`, a release `env` ran
    before, or the source's release with this promotion's evidence; else a one-line
    refusal naming both ids."""
    if _in_canary(ws, env, opts.release):
        return EnvDir(ws.root, env).read_record().release  # type: ignore[union-attr]
    earlier = _ran_in(ws, env, opts.release) if opts.metrics is None and \
        opts.model_uri is None else None
    if earlier is not None:  # a rollback's target, a canary's baseline: approved again
        return earlier
    source = config.previous(env)
    where = source.name if source else env
    record = EnvDir(ws.root, where).read_record()
    if record is None:
        raise ConfigError(f"release {opts.release} is not the one waiting in {where} "
                          f"({where} has no release); approve the release about to enter {env}")
    release = record.release
    if source is not None and (metrics is not None or opts.model_uri is not None):
        release = compose_release(ws.root, config, Source.environment(where), None, metrics,
                                  opts.model_uri)
    if release.id != opts.release:
        raise ConfigError(
            f"release {opts.release} is not the one waiting in {where} ({where} has "
            f"{record.release.id}{_with_evidence(release, record.release, opts)}); approve "
            f"the release about to enter {env} (`mlops promote --plan --json` names it)")
    return release


def _ran_in(ws: Workspace, env: str, release_id: str):
    """The release `release_id` as `env` ran it before (the newest record of it there), so
    that a release manager can approve again what a rollback or an abort would put back
    (an approval older than digests, or by a key since rotated out); else None."""
    current = EnvDir(ws.root, env).read_record()
    if current is not None and current.release.id == release_id:
        return None  # what runs now needs no approval to stay
    return next((r for r in _releases_in(ws, env) if r.id == release_id), None)


def _releases_in(ws: Workspace, env: str) -> Iterator[rel.Release]:
    """Each release `env`'s record has held, newest first (records that do not parse,
    hand-made or not, are skipped)."""
    path = EnvDir(ws.root, env).record_display
    shas = [sha for sha, _ in reversed(ws.history([path]))]
    for sha, text in zip(shas, ws.show_many([f"{sha}:{path}" for sha in shas]), strict=True):
        try:
            if text:
                yield rel.parse(text.decode("utf-8"), f"{sha[:10]}:{path}").release
        except (ConfigError, UnicodeDecodeError):
            continue


def _check_content(ws: Workspace, config, env: str, release, opts: ApproveOptions,
                   metrics) -> None:
    """The approval signs the content waiting now. With --digest it must be the content
    the manager reviewed. Without, the id must have named no other content in the
    environments it comes from: ids are 48 bits, and a pusher who finds a second release
    with the reviewed one's id (a minute of one CPU) could swap it in before `approve`."""
    if opts.digest is not None:
        if release.digest != opts.digest:
            raise ApprovalError(
                f"release {release.id} waiting for {env} has content digest {release.digest}, "
                f"not {opts.digest} as given: its content changed since it was reviewed; "
                "nothing was signed")
        return
    source = config.previous(env)
    evidence = (metrics, opts.model_uri) if metrics is not None or opts.model_uri else None
    named = _contents_named(ws, env, opts.release, None)
    if source is not None:
        named |= _contents_named(ws, source.name, opts.release, evidence)
    others = sorted(named - {release.digest})
    if others:
        raise ApprovalError(
            f"release id {opts.release} has also named other content ({others[0]}) in the "
            f"history of {env} or the environment before it, besides {release.digest}: two "
            "releases share the id; approve by content with --digest (`mlops promote --plan "
            "--json` prints approval.digest); nothing was signed")


def _contents_named(ws: Workspace, where: str, release_id: str, evidence) -> set[str]:
    """The content digests of every release `where`'s record held (with `evidence`
    attached, as the promotion would) whose id is `release_id`."""
    found = set()
    for release in _releases_in(ws, where):
        try:
            if evidence is not None:
                release = with_evidence(release, *evidence)
        except ConfigError:  # it carries other evidence already: not this release
            continue
        if release.id == release_id:
            found.add(release.digest)
    return found


def _with_evidence(release, recorded, opts: ApproveOptions) -> str:
    if release.id == recorded.id:
        return ""
    given = " and ".join(f for f, v in (("--metrics", opts.metrics),
                                         ("--model-uri", opts.model_uri)) if v)
    return f", which with these {given} is {release.id}"
