"""The shard planner and the merge of partial records: pure, and property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.core.shards import Item, merge_parts, plan_shards
from mlops.errors import BuildError, UsageError

names = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), min_size=0,
                 max_size=60, unique=True)


@st.composite
def workloads(draw):
    """Items with sizes, some ordered after an earlier one (no cycles), and a shard count."""
    chosen = draw(names)
    items = []
    for k, name in enumerate(chosen):
        before = draw(st.lists(st.sampled_from(chosen[:k]), max_size=2, unique=True)) if k else []
        size = draw(st.floats(min_value=0, max_value=1e6, allow_nan=False))
        items.append(Item(name, size, tuple(before)))
    return items, draw(st.integers(min_value=1, max_value=12))


def group_of(items: list[Item]) -> dict[str, frozenset[str]]:
    """Each component's group: everything joined to it by `after`, either way."""
    linked = {i.name: {i.name, *i.after} for i in items}
    for item in items:
        for before in item.after:
            linked[before].add(item.name)
    changed = True
    while changed:
        changed = False
        for name, members in linked.items():
            grown = set().union(*(linked[m] for m in members))
            if grown != members:
                linked[name], changed = grown, True
    return {name: frozenset(m) for name, m in linked.items()}


@settings(max_examples=300, deadline=None)
@given(workloads())
def test_every_component_is_in_exactly_one_shard_in_build_order(work):
    items, shards = work
    plan = plan_shards(items, shards)
    placed = [name for shard in plan for name in shard.components]
    assert sorted(placed) == sorted(i.name for i in items)
    groups = set(group_of(items).values())
    assert len(plan) == min(shards, len(groups)) and all(s.components for s in plan)
    assert [s.index for s in plan] == list(range(len(plan)))
    where = {name: (s.index, pos) for s in plan for pos, name in enumerate(s.components)}
    for item in items:
        for before in item.after:
            assert where[before][0] == where[item.name][0]  # same shard ...
            assert where[before][1] < where[item.name][1]  # ... and built first


@settings(max_examples=300, deadline=None)
@given(workloads())
def test_shards_are_balanced_within_the_largest_group(work):
    items, shards = work
    plan = plan_shards(items, shards)
    if len(plan) < 2:
        return
    groups = group_of(items)
    size = {i.name: i.size for i in items}
    largest = max(sum(size[m] for m in g) for g in groups.values())
    loads = [s.size for s in plan]
    assert max(loads) - min(loads) <= largest + 1e-6 * max(1.0, largest)


def test_equal_components_spread_evenly_and_the_matrix_names_them():
    plan = plan_shards([Item(f"c{k:02d}", 1.0) for k in range(30)], 3)
    assert [len(s.components) for s in plan] == [10, 10, 10]
    assert plan[0].matrix_entry()["components"].split()[0] == "c00"


def test_a_circle_of_build_order_is_refused():
    with pytest.raises(UsageError, match="components build in a circle: a -> b -> a"):
        plan_shards([Item("a", 1, ("b",)), Item("b", 1, ("a",))], 2)


@pytest.mark.parametrize("shards", [0, 257])
def test_the_shard_count_is_bounded(shards):
    with pytest.raises(UsageError, match="--shards must be between 1 and 256"):
        plan_shards([Item("a", 1)], shards)


COMMIT = "c" * 40


def part(*entries, commit=COMMIT):
    return {"source_commit": commit, "builds": list(entries)}


def built(name, **extra):
    return {"component": name, "digest": "sha256:" + "0" * 64, "status": "built", **extra}


def test_parts_merge_in_plan_order():
    merged = merge_parts([("p1.json", part(built("b"))), ("p0.json", part(built("a")))],
                         ["a", "b"], COMMIT)
    assert [e["component"] for e in merged] == ["a", "b"]


@pytest.mark.parametrize(("parts", "message"), [
    ([("p0.json", part(built("a"), commit="d" * 40))], "p0.json: built from 'dddd"),
    ([("p0.json", part(built("a"))), ("p1.json", part(built("a")))],
     "p1.json: builds 'a', which p0.json built too"),
    ([("p0.json", part())], "no part builds planned component 'a' \\(1 missing\\)"),
    ([("p0.json", part(built("a"), built("z")))], "p0.json: builds 'z', which the plan did not"),
    ([("p0.json", part(built("a", status="failed", digest=None, error="test exited 1")))],
     "p0.json: component 'a' failed: test exited 1"),
    ([("p0.json", part("a"))], "p0.json: a build entry without a component name"),
])
def test_a_bad_set_of_parts_is_refused_naming_the_part(parts, message):
    with pytest.raises(BuildError, match=message):
        merge_parts(parts, ["a"], COMMIT)
