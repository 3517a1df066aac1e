"""Fan-out builds on a CI matrix: the plan one job writes, the check that a shard job
builds exactly what was planned, and the merge of the shards' partial records.

The plan file is the contract between jobs:

    {"kind": "mlops-build-plan", "version": 1, "source_commit": ..., "registry": ...,
     "force": <planned with --force>, "shards": <non-empty shards>,
     "matrix": {"include": [{"shard": 0, "components": "a b", "size": 1.5}, ...]},
     "components": [{"component", "image", "input_hash", "action", "reason", "digest",
     "size", "after"}, ...]}

`matrix` is what a GitHub Actions `strategy.matrix` takes. Each shard's record
says which plan (by id) and shard it carried out, so parts of different plans
never merge. Balancing and merging rules are pure, in mlops.core.shards.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops import components as comps
from mlops.buildrecord import BuildRecord, read_build_record, read_document
from mlops.core.shards import Item, Shard, estimate_sizes, plan_shards
from mlops.errors import BuildError, ConfigError, UsageError
from mlops.plan import BUILD, REUSE, PlannedComponent
from mlops.records import dataclass
from mlops.tracked import FileIndex

PLAN_KIND = "mlops-build-plan"
PLAN_VERSION = 1
PART_KEY = "plan"  # in a shard's record: {"id": <plan id>, "shard": K}


@dataclass(frozen=True)
class FanoutPlan:
    source_commit: str | None
    registry: str
    shards: tuple[Shard, ...]
    components: tuple[Mapping[str, Any], ...]  # every planned component, in plan order
    path: str = ""  # where it was read from, for messages
    force: bool = False  # planned with --force: each shard rebuilds its components

    @property
    def id(self) -> str:
        """The plan's content hash: parts carry it, so a merge takes one plan's parts only."""
        canonical = json.dumps(self.dump(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def order(self) -> list[str]:
        return [c["component"] for c in self.components]

    def to_build(self) -> list[str]:
        return [name for shard in self.shards for name in shard.components]

    def reused(self) -> list[str]:
        return [c["component"] for c in self.components if c["action"] == REUSE]

    def entry(self, name: str) -> Mapping[str, Any]:
        return next(c for c in self.components if c["component"] == name)

    def shard(self, index: int) -> Shard:
        for shard in self.shards:
            if shard.index == index:
                return shard
        known = ", ".join(str(s.index) for s in self.shards) or "none: nothing to build"
        raise UsageError(f"{self.path or 'the plan'} has no shard {index} (its shards: {known})")

    def dump(self) -> dict[str, Any]:
        return {"kind": PLAN_KIND, "version": PLAN_VERSION, "source_commit": self.source_commit,
                "registry": self.registry, "force": self.force, "shards": len(self.shards),
                "matrix": {"include": [s.matrix_entry() for s in self.shards]},
                "components": [dict(c) for c in self.components]}


def make_fanout_plan(head: str | None, registry: str, plan: Sequence[PlannedComponent],
                     sizes: Mapping[str, float], after: Mapping[str, Sequence[str]],
                     shards: int, force: bool = False) -> FanoutPlan:
    """The components to build, in at most `shards` balanced shards, and those to reuse."""
    items = [Item(p.name, sizes.get(p.name, 0.0), tuple(after.get(p.name, ())))
             for p in plan if p.action == BUILD]
    planned = plan_shards(items, shards)
    components = tuple(
        {"component": p.name, "image": p.image, "input_hash": p.input_hash,
         "action": p.action, "reason": p.reason, "digest": p.existing_digest,
         "size": round(sizes.get(p.name, 0.0), 3), "after": list(after.get(p.name, ()))}
        for p in plan)
    return FanoutPlan(head, registry, tuple(planned), components, force=force)


def after_relation(specs: Sequence[comps.ComponentSpec]) -> dict[str, tuple[str, ...]]:
    """Component -> the components it builds after: those whose folder (or a path in it)
    it lists in `depends_on`, as a component whose base image is another one does."""
    folders = {s.name: s.folder.rstrip("/") for s in specs}
    relation = {}
    for spec in specs:
        before = sorted({other for other, folder in folders.items() if other != spec.name
                         and any(_within(p, folder) for p in spec.depends_on)})
        if before:
            relation[spec.name] = tuple(before)
    return relation


def _within(path: str, folder: str) -> bool:
    path = path.rstrip("/")
    return path == folder or path.startswith(folder + "/")


def context_bytes(root: Path, specs: Sequence[comps.ComponentSpec],
                  index: FileIndex) -> dict[str, int]:
    """Per component, the bytes of the tracked files its image is built from."""
    return {s.name: sum(_size(root / f.path) for f in index.under(s.input_paths)) for s in specs}


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0  # tracked but deleted: the build will say so; it weighs nothing here


def sizes_for(root: Path, specs: Sequence[comps.ComponentSpec], index: FileIndex,
              timings: Path | None) -> dict[str, float]:
    seconds = past_seconds(read_build_record(timings)) if timings else {}
    return estimate_sizes(context_bytes(root, specs, index), seconds)


def past_seconds(record: BuildRecord) -> dict[str, float]:
    """Build times a record holds (`seconds` of the components it built)."""
    found = {}
    for entry in record.entries():
        value = entry.get("seconds")
        if entry.get("built") and isinstance(value, int | float) and value >= 0:
            found[str(entry.get("component"))] = float(value)
    return found


# -- reading what other jobs wrote ------------------------------------------------------


def read_plan(path: Path) -> FanoutPlan:
    return parse_plan(read_document(path, "build plan", UsageError), str(path))


def parse_plan(data: Any, path: str) -> FanoutPlan:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"{path}: not an mlops build plan ({why}); make one with "
                           "`mlops build --plan --output FILE`")

    if not isinstance(data, dict) or data.get("kind") != PLAN_KIND:
        raise bad(f"no \"kind\": \"{PLAN_KIND}\"")
    if data.get("version") != PLAN_VERSION:
        raise bad(f"version {data.get('version')!r}, this mlops reads {PLAN_VERSION}")
    commit, registry = data.get("source_commit"), data.get("registry")
    if not (commit is None or isinstance(commit, str)) or not isinstance(registry, str):
        raise bad("source_commit or registry missing")
    if type(data.get("force", False)) is not bool:
        raise bad("force is not true or false")
    components = tuple(_component(c, bad) for c in _list(data.get("components"), bad))
    shards = tuple(_shard(s, bad) for s in _list((data.get("matrix") or {}).get("include"), bad))
    building = [c["component"] for c in components if c["action"] == BUILD]
    in_shards = [n for s in shards for n in s.components]
    if sorted(in_shards) != sorted(building) or len(set(in_shards)) != len(in_shards):
        raise bad("its shards do not hold each component to build exactly once")
    return FanoutPlan(commit, registry, shards, components, path, force=data.get("force", False))


def _list(value: Any, bad) -> list:
    if not isinstance(value, list):
        raise bad("components or matrix.include is not a list")
    return value


def _component(value: Any, bad) -> Mapping[str, Any]:
    keys = ("component", "image", "input_hash")
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in keys) \
            or value.get("action") not in (BUILD, REUSE):
        raise bad("a component entry without component, image, input_hash and action")
    return value


def _shard(value: Any, bad) -> Shard:
    if not isinstance(value, dict) or type(value.get("shard")) is not int \
            or not isinstance(value.get("components"), str):
        raise bad("a matrix entry without shard and components")
    size = value.get("size")
    return Shard(value["shard"], tuple(value["components"].split()),
                 float(size) if isinstance(size, int | float) else 0.0)


def read_part(path: Path) -> dict[str, Any]:
    """A shard's partial record, with the plan it says it carried out."""
    data = read_document(path, "shard record", BuildError)
    record = BuildRecord.parse(data, str(path)).dump()
    part = data.get(PART_KEY)
    if not isinstance(part, dict) or not isinstance(part.get("id"), str):
        raise BuildError(f"{path}: not a shard's record (no \"plan\" id); make parts with "
                         "`mlops build --shard K --plan FILE --output FILE`")
    return {**record, PART_KEY: part}


# -- checks ---------------------------------------------------------------------------


def check_carries_out(plan: FanoutPlan, head: str | None,
                      planned: Sequence[PlannedComponent]) -> None:
    """This checkout and registry give the plan's components the plan's input hashes:
    a shard or merge job built from anything else would record other images."""
    where = plan.path or "the plan"
    if head != plan.source_commit:
        raise BuildError(f"{where} was made at commit {plan.source_commit}, but this "
                         f"checkout is at {head}; check out the plan's commit")
    for p in planned:
        entry = plan.entry(p.name)
        if p.image != entry["image"]:
            raise BuildError(f"{where} puts {p.name} in {entry['image']}, but here it goes to "
                             f"{p.image}; give every job the same registry ($MLOPS_REGISTRY)")
        if p.input_hash != entry["input_hash"]:
            raise BuildError(f"{p.name}'s inputs here hash to {p.input_hash[:19]}, but "
                             f"{where} has {entry['input_hash'][:19]}; the checkout differs "
                             "from the planning job's")


def check_parts_of(plan: FanoutPlan, parts: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    for where, part in parts:
        if part[PART_KEY].get("id") != plan.id:
            raise BuildError(f"{where}: carried out another plan than {plan.path or 'this'} "
                             f"({part[PART_KEY].get('id')}); merge the parts of one plan")


def part_record(record: Mapping[str, Any], plan: FanoutPlan, shard: int) -> dict[str, Any]:
    return {**record, PART_KEY: {"id": plan.id, "shard": shard}}
