"""Fan-out builds: the components to build, split into balanced shards; the shards' partial
build records merged back into one. Pure: sizes and records come in as plain values.

Balancing is longest-first greedy (LPT): groups sorted by size, each given to the
least loaded shard. With that, the most loaded shard exceeds the least loaded
by at most the largest group, whatever the sizes. Components that must build in
order (one's image is another's base, `after`) form one group and one shard,
built in that order, so no shard waits for another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlops.errors import BuildError, UsageError
from mlops.records import dataclass

MAX_SHARDS = 256  # a GitHub Actions matrix holds at most 256 jobs


@dataclass(frozen=True)
class Item:
    """One component to build: its name, a size estimate, and what must be built first."""

    name: str
    size: float
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shard:
    index: int
    components: tuple[str, ...]  # in build order
    size: float

    def matrix_entry(self) -> dict[str, object]:
        return {"shard": self.index, "components": " ".join(self.components),
                "size": round(self.size, 3)}


def plan_shards(items: Sequence[Item], shards: int) -> list[Shard]:
    """min(shards, groups) non-empty shards covering every item exactly once. Ties go to the
    shard with fewer components, so components of no size still spread out."""
    if not 1 <= shards <= MAX_SHARDS:
        raise UsageError(f"--shards must be between 1 and {MAX_SHARDS}, got {shards}")
    groups = _ordered_groups(items)
    loads: list[list] = [[0.0, i, []] for i in range(min(shards, len(groups)))]
    for group in sorted(groups, key=lambda g: (-_size(g), g[0].name)):
        target = min(loads, key=lambda load: (load[0], len(load[2]), load[1]))
        target[0] += _size(group)
        target[2].extend(group)
    used = [load for load in loads if load[2]]
    return [Shard(k, tuple(i.name for i in load[2]), load[0]) for k, load in enumerate(used)]


def _size(group: Sequence[Item]) -> float:
    return sum(max(0.0, i.size) for i in group)


def _ordered_groups(items: Sequence[Item]) -> list[list[Item]]:
    """Items joined through `after` (either way) into groups, each in dependency order."""
    by_name = {i.name: i for i in items}
    parent = {name: name for name in by_name}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for item in items:
        for before in item.after:
            if before in by_name:  # one that is reused needs no ordering
                parent[find(item.name)] = find(before)
    members: dict[str, list[Item]] = {}
    for item in items:
        members.setdefault(find(item.name), []).append(item)
    return [_topological(group, by_name) for group in members.values()]


def _topological(group: list[Item], by_name: Mapping[str, Item]) -> list[Item]:
    done: list[Item] = []
    seen: set[str] = set()

    def visit(item: Item, path: tuple[str, ...]) -> None:
        if item.name in seen:
            return
        if item.name in path:
            raise UsageError(f"components build in a circle: {' -> '.join((*path, item.name))}")
        for before in sorted(item.after):
            if before in by_name:
                visit(by_name[before], (*path, item.name))
        seen.add(item.name)
        done.append(item)

    for item in sorted(group, key=lambda i: i.name):
        visit(item, ())
    return done


def merge_parts(parts: Sequence[tuple[str, Mapping]], planned: Sequence[str],
                commit: str | None) -> list[Mapping]:
    """The build entries of every shard's partial record, checked against the plan.

    `parts` are (where it came from, the record as read); `planned` the
    components the plan gave to shards; `commit` the plan's source commit.
    Refused (exit 1, naming the part): another commit, a component built by two
    shards, a planned component no shard built, a component built outside the
    plan, and any failed build.
    """
    found: dict[str, tuple[str, Mapping]] = {}
    for where, record in parts:
        if record.get("source_commit") != commit:
            raise BuildError(f"{where}: built from {record.get('source_commit')!r}, but the "
                             f"plan is of {commit!r}; merge the parts of one plan")
        for entry in record.get("builds") or []:
            _take(found, where, entry)
    extra = sorted(set(found) - set(planned))
    if extra:
        raise BuildError(f"{found[extra[0]][0]}: builds {extra[0]!r}, which the plan did "
                         "not give to any shard")
    missing = [name for name in planned if name not in found]
    if missing:
        raise BuildError(f"no part builds planned component {missing[0]!r} "
                         f"({len(missing)} missing); did its shard run and upload its record?")
    return [found[name][1] for name in planned]


def _take(found: dict[str, tuple[str, Mapping]], where: str, entry: object) -> None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("component"), str):
        raise BuildError(f"{where}: a build entry without a component name")
    name = entry["component"]
    if name in found:
        raise BuildError(f"{where}: builds {name!r}, which {found[name][0]} built too; "
                         "shards must not overlap")
    if entry.get("status") == "failed" or not entry.get("digest"):
        why = entry.get("error") or "no digest"
        raise BuildError(f"{where}: component {name!r} failed: {why}")
    found[name] = (where, entry)


def estimate_sizes(context_bytes: Mapping[str, int],
                   seconds: Mapping[str, float]) -> dict[str, float]:
    """Each component's weight: its past build time where a record has it, else its build
    context's bytes at the average seconds per byte of those that have both, so the two
    kinds of estimate share one unit. With no past times, bytes are the weight."""
    timed = [n for n in context_bytes if n in seconds]
    timed_bytes = sum(context_bytes[n] for n in timed)
    rate = sum(seconds[n] for n in timed) / timed_bytes if timed and timed_bytes else 1.0
    return {n: float(seconds[n]) if n in seconds else b * rate
            for n, b in context_bytes.items()}


def waves(after: Mapping[str, Sequence[str]], names: Sequence[str]) -> list[list[str]]:
    """`names` in build waves: each after every wave holding something it waits for.
    Names outside `names` are not waited for (their images exist already)."""
    level: dict[str, int] = {}
    wanted = set(names)

    def depth(name: str, path: tuple[str, ...]) -> int:
        if name in level:
            return level[name]
        if name in path:
            raise UsageError(f"components build in a circle: {' -> '.join((*path, name))}")
        before = [b for b in after.get(name, ()) if b in wanted]
        level[name] = 1 + max((depth(b, (*path, name)) for b in before), default=-1)
        return level[name]

    for name in names:
        depth(name, ())
    return [[n for n in names if level[n] == k] for k in range(max(level.values(), default=-1) + 1)]
