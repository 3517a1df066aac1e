"""`mlops history [--env ENV]`: promotions, rollbacks and approvals, from git trailers."""

from __future__ import annotations

from mlops import config as cfg
from mlops import trailers as tr
from mlops import utctime
from mlops.adapters.gitops import remote_url
from mlops.adapters.gitops.history import Grep, LogEntry, read_remote
from mlops.commands import Context
from mlops.output import one_line
from mlops.records import dataclass

ACTIONS = ("promote", "rollback", "approve", "rollout-start", "rollout-step",
           "rollout-complete", "rollout-abort")


@dataclass(frozen=True)
class HistoryOptions:
    env: str | None = None
    limit: int = 50


def history(ctx: Context, opts: HistoryOptions) -> int:
    config = cfg.load_config(ctx.root, ctx.environ)
    env = cfg.environment_arg(config, opts.env).name if opts.env is not None else None
    written = _Written(ctx.out.json_mode)
    # Each entry is made as git prints its commit, and written as it will be printed a
    # few dozen at a time, while git formats the next ones: at the end, little is left.
    # The remote's URL is found (a git process) while git reads the log held already.
    entries = read_remote(ctx.root, lambda: remote_url(ctx.root, config.git.remote),
                          config.git.branch,
                          lambda c: written.add(entry(c)) if _wanted(c, env) else None,
                          opts.limit, _grep(env), ctx.out.note)
    texts = written.texts(entries)
    ctx.out.result({"env": env, "entries": entries}, lambda: _listing(texts),
                   lambda: {"entries": _json_list(texts)})
    return 0


class _Written:
    """Entries as they are printed (their JSON, or their line), written a batch at a
    time as they come. `texts` answers for the entries `read_remote` returned: not
    every entry made (a fetch that brought new commits has them read again)."""

    BATCH = 32  # entries written together (jsontext writes a list's records key by key)

    def __init__(self, json_mode: bool) -> None:
        self._write = _json_items if json_mode else _lines
        self._pending: list[dict] = []
        self._made: list[dict] = []  # every entry written stays alive: no id is reused
        self._texts: dict[int, str] = {}

    def add(self, made: dict) -> dict:
        self._pending.append(made)
        if len(self._pending) >= self.BATCH:
            self._flush()
        return made

    def texts(self, entries: list[dict]) -> list[str]:
        self._flush()
        return [self._texts[id(e)] for e in entries]

    def _flush(self) -> None:
        self._texts.update(zip(map(id, self._pending), self._write(self._pending),
                               strict=True))
        self._made += self._pending
        self._pending = []


def _json_items(entries: list[dict]) -> list[str]:
    from mlops import jsontext  # here: human output never needs it

    return jsontext.items(entries, 1)  # {"entries": [...]}: the list is one down


def _json_list(texts: list[str]) -> str:
    from mlops import jsontext

    return jsontext.list_of(texts, 1)


def _lines(entries: list[dict]) -> list[str]:
    return [_line(e) for e in entries]


def _wanted(commit: LogEntry, env: str | None) -> bool:
    get = commit.trailers.get
    return (get(_ACTION) or _NONE)[0] in _ACTIONS and (
        env is None or (get(_ENVIRONMENT) or _NONE)[0] == env)


def _grep(env: str | None) -> Grep:
    """What a wanted commit's message must hold (a superset: `_wanted` decides).

    Every environment: the action key anywhere, as a fixed string (git's quickest
    matcher: a quarter of the log's time less than a regex). A wanted commit
    holds its key as written, and no non-ASCII letter lowercases to one of the
    key's, so git's ASCII case folding keeps every commit `_wanted` keeps.

    One environment: a trailer is `Key: value` at the start of a line (git
    allows blanks before the colon). git reads the patterns in the C locale,
    where `[[:space:]]` is ASCII only, while a value is stripped of any Unicode
    space; so a wanted environment line either holds the name or, when the value
    is folded onto the next line, holds no letter or digit at all. (A fixed
    string would also let through every commit naming the environment
    elsewhere, such as staging's `Mlops-From: dev`.)
    """
    if env is None:
        return Grep((tr.ACTION,), fixed=True)
    # environment names are lowercase letters, digits and '-'
    return Grep((f"^{tr.ACTION}[[:space:]]*:",
                 f"^{tr.ENVIRONMENT}[[:space:]]*:(.*{env}|[^[:alnum:]]*$)"))


# Trailers read straight from `LogEntry.trailers`, without the call and the `lower()`
# that `LogEntry.first` costs: an entry reads 14 keys, and a history hundreds of
# entries. A key present has at least one value.
_ACTIONS = frozenset(ACTIONS)
_NONE = (None,)
(_ACTION, _ENVIRONMENT, _RELEASE, _APPROVE, _FROM, _DIGEST, _PIPELINE, _GATE, _APPROVER,
 _HOLD, _CANARY, _ANALYSIS, _PROVENANCE, _NOTE) = (key.lower() for key in (
    tr.ACTION, tr.ENVIRONMENT, tr.RELEASE, tr.APPROVE, tr.FROM, tr.DIGEST, tr.PIPELINE,
    tr.GATE, tr.APPROVER, tr.HOLD, tr.CANARY, tr.ANALYSIS, tr.PROVENANCE, tr.NOTE))


def entry(commit: LogEntry) -> dict:
    get = commit.trailers.get
    return {
        "commit": commit.sha,
        "time": None if commit.time is None else utctime.at(commit.time),  # None: no date
        "action": (get(_ACTION) or _NONE)[0],
        "env": (get(_ENVIRONMENT) or _NONE)[0],
        "release": (get(_RELEASE) or _NONE)[0] or (get(_APPROVE) or _NONE)[0],
        "from": (get(_FROM) or _NONE)[0],
        "digests": tr.pairs(get(_DIGEST, ())),
        "pipelines": tr.pairs(get(_PIPELINE, ())),
        "gates": tr.pairs(get(_GATE, ())),
        "approver": (get(_APPROVER) or _NONE)[0],
        "hold": (get(_HOLD) or _NONE)[0],
        "canary": (get(_CANARY) or _NONE)[0],
        "analysis": (get(_ANALYSIS) or _NONE)[0],
        "provenance": tr.pairs(get(_PROVENANCE, ())),
        "note": (get(_NOTE) or _NONE)[0],
        "subject": commit.subject,
    }


def _human(entries: list[dict]) -> str:
    return _listing(_lines(entries))


def _listing(lines: list[str]) -> str:
    return "\n".join(lines) if lines else "no promotions yet"


def _line(e: dict) -> str:
    gates = ", ".join(f"{k}={v}" for k, v in e["gates"].items()) or "no gates"
    extra = f"  approver {e['approver']}" if e["approver"] else ""
    hold = f"  hold {e['hold']}" if e["hold"] else ""
    hold += f"  canary {e['canary']}%" if e["canary"] else ""
    hold += f"  provenance {len(e['provenance'])} signed" if e["provenance"] else ""
    hold += f"  ({e['note']})" if e["note"] else ""
    when = e["time"] or "(no valid date)"
    # anyone who can push writes these values: no escape sequence reaches the terminal
    return one_line(
        f"{when:<20}  {e['commit'][:10]}  {e['action']:<16} {e['env'] or '-':<8} "
        f"{e['release']}  from {e['from'] or '-'}  [{gates}]{extra}{hold}")
