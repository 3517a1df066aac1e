"""`mlops build --plan / --shard / --merge`: one plan, shards built apart, one record.

Real Docker Engine and registry. The large case (30 components, three shard
processes with their own DOCKER_CONFIG and clone, merged, promoted) is in
test_build_fanout_e2e.py; these are the rules, each on a few tiny components.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid

import pytest

from tests.conftest import mlops_yaml, tiny_component
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")


def sized(name: str, size: int, extra: str = "") -> dict[str, str]:
    files = tiny_component(name, extra=extra)
    files[f"components/{name}/src/data.txt"] = "x" * size
    return files


@pytest.fixture
def four(project, registry):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **sized("big", 40_000), **sized("mid", 20_000),
                    **sized("small", 10_000), **sized("tiny", 9_000)})
    return proj, server, ns


def plan_of(proj, tmp_path, *args: str) -> tuple[dict, str]:
    path = tmp_path / "plan.json"
    result = proj.run("build", "--plan", *args, "--output", str(path), "--json")
    assert result.code == 0, result.err
    assert json.loads(path.read_text()) == result.json
    return result.json, str(path)


def shard(proj, tmp_path, plan: str, k: int, *args: str, env=None):
    part = tmp_path / f"part-{k}.json"
    result = proj.run("build", "--shard", str(k), "--plan", plan, "--output", str(part), *args,
                      env=env)
    return result, part


def unrelated_commit(proj) -> str:
    """A commit that changes no component's inputs; its short id."""
    proj.write({"NOTES.md": "not an input of any component\n"})
    return proj.commit("notes")[:7]


def delete_image(server, repository: str, digest: str) -> None:
    """Delete a manifest through the registry's API (the test registry allows it); its
    tags go with it."""
    req = urllib.request.Request(f"http://{server.host}/v2/{repository}/manifests/{digest}",
                                 method="DELETE")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202


def test_plan_balances_shards_and_builds_nothing(four, tmp_path):
    proj, server, ns = four
    plan, _ = plan_of(proj, tmp_path, "--shards", "2")
    assert plan["kind"] == "mlops-build-plan" and plan["shards"] == 2
    assert plan["source_commit"] == proj.git("rev-parse", "HEAD")
    include = plan["matrix"]["include"]
    assert [e["shard"] for e in include] == [0, 1]
    groups = [set(e["components"].split()) for e in include]
    # Longest first: big alone; mid, small and tiny (39 kB) against big's 40 kB.
    assert groups == [{"big"}, {"mid", "small", "tiny"}]
    assert {c["component"]: c["action"] for c in plan["components"]} == dict.fromkeys(
        ["big", "mid", "small", "tiny"], "build")
    assert all(server.tags(f"{ns.split('/', 1)[1]}/{n}") == [] for n in ("big", "tiny"))


def test_plan_without_output_prints_the_shards(four):
    proj, _, _ = four
    result = proj.run("build", "--plan", "--shards", "3")
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["shard 0: big", "shard 1: mid", "shard 2: small tiny",
                                       "plan: 4 to build in 3 shards, 0 to reuse"]


def test_a_component_named_right_after_plan_is_planned_alone(four):
    # `--plan` takes an optional value (the plan file of --shard or --merge); without
    # those, that value is a component, as in `mlops build tiny --plan`.
    proj, _, _ = four
    for argv in (["--plan", "tiny", "mid"], ["tiny", "mid", "--plan"]):
        result = proj.run("build", *argv, "--shards", "2")
        assert result.code == 0, result.err
        assert result.out.splitlines() == ["shard 0: mid", "shard 1: tiny",
                                           "plan: 2 to build in 2 shards, 0 to reuse"], argv


def test_shards_and_merge_make_the_one_runner_record(four, tmp_path):
    proj, server, ns = four
    assert proj.run("build", "tiny").code == 0  # in the registry already: reused
    # Planned at a later commit with the same inputs: tiny is reused, and this commit's
    # version tag is not in the registry until the merge puts it there.
    short = unrelated_commit(proj)
    tiny_repo = f"{ns.split('/', 1)[1]}/tiny"
    assert f"0.1.0-{short}" not in server.tags(tiny_repo)
    plan, path = plan_of(proj, tmp_path, "--shards", "2")
    assert [c["component"] for c in plan["components"] if c["action"] == "reuse"] == ["tiny"]
    parts = []
    for k in range(plan["shards"]):
        result, part = shard(proj, tmp_path, path, k)
        assert result.code == 0, result.err
        record = json.loads(part.read_text())
        assert [b["component"] for b in record["builds"]] == \
            plan["matrix"]["include"][k]["components"].split()
        assert record["plan"]["shard"] == k
        parts.append(str(part))
    merged_path = tmp_path / "build.json"
    result = proj.run("build", "--merge", *parts, "--plan", path, "--output", str(merged_path))
    assert result.code == 0, result.err
    merged = json.loads(merged_path.read_text())
    assert "plan" not in merged
    tiny = next(b for b in merged["builds"] if b["component"] == "tiny")
    assert tiny["status"] == "reused" and tiny["built"] is False
    assert f"0.1.0-{short}" in tiny["tags"]
    # Tagged by the merge (the one-runner build below would tag it too: check first).
    assert server.digest(tiny_repo, f"0.1.0-{short}") == tiny["digest"]
    single = tmp_path / "single.json"
    assert proj.run("build", "--output", str(single)).code == 0
    one = json.loads(single.read_text())
    keys = ("component", "image", "tags", "digest", "input_hash", "status")
    reused_now = [{**{k: b[k] for k in keys}, "status": "reused"} for b in merged["builds"]]
    assert [{k: b[k] for k in keys} for b in one["builds"]] == reused_now
    assert merged["source_commit"] == one["source_commit"]


def test_a_shard_of_another_commit_is_refused_before_building(four, tmp_path):
    proj, server, ns = four
    _, path = plan_of(proj, tmp_path, "--shards", "2")
    proj.write({"components/big/src/main.py": "print('changed')\n"})
    proj.commit("after planning")
    result, part = shard(proj, tmp_path, path, 0)
    assert result.code == 1
    assert "was made at commit" in result.err and "check out the plan's commit" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not part.exists()
    assert server.tags(f"{ns.split('/', 1)[1]}/big") == []


def test_a_shard_with_another_registry_is_refused_before_building(four, tmp_path):
    proj, server, ns = four
    _, path = plan_of(proj, tmp_path, "--shards", "2")
    other = f"{server.host}/other{uuid.uuid4().hex[:8]}"
    before = Snapshot.take(repo=proj.path, registry=server)
    result, part = shard(proj, tmp_path, path, 0, env={"MLOPS_REGISTRY": other})
    assert result.code == 1, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert f"puts big in {ns}/big, but here it goes to {other}/big" in result.err
    assert "give every job the same registry" in result.err
    assert not part.exists()
    before.assert_same(Snapshot.take(repo=proj.path, registry=server))  # nothing pushed
    built_here = subprocess.run(["docker", "image", "ls", "-q", "--filter",
                                 f"reference={other}/*"], capture_output=True, text=True)
    assert built_here.returncode == 0 and built_here.stdout == ""  # nor built


def test_a_dirty_checkout_that_changes_inputs_is_refused(four, tmp_path):
    proj, server, ns = four
    _, path = plan_of(proj, tmp_path, "--shards", "2")
    proj.write({"components/big/src/main.py": "print('edited, not committed')\n"})
    result, part = shard(proj, tmp_path, path, 0)
    assert result.code == 1 and "inputs here hash to" in result.err, result.err
    assert not part.exists() and server.tags(f"{ns.split('/', 1)[1]}/big") == []


@pytest.fixture
def parts(four, tmp_path):
    proj, _, _ = four
    plan, path = plan_of(proj, tmp_path, "--shards", "2")
    made = []
    for k in range(plan["shards"]):
        result, part = shard(proj, tmp_path, path, k)
        assert result.code == 0, result.err
        made.append(part)
    return proj, plan, path, made


def merge(proj, tmp_path, path, *parts):
    out = tmp_path / "merged.json"
    result = proj.run("build", "--merge", *map(str, parts), "--plan", path, "--output", str(out))
    return result, out


def test_merge_refuses_a_missing_part(parts, tmp_path):
    proj, plan, path, made = parts
    result, out = merge(proj, tmp_path, path, made[0])
    missing = plan["matrix"]["include"][1]["components"].split()[0]
    assert result.code == 1 and f"no part builds planned component {missing!r}" in result.err
    assert not out.exists()


def test_merge_refuses_overlapping_parts(parts, tmp_path):
    proj, _, path, made = parts
    result, out = merge(proj, tmp_path, path, made[0], made[1], made[0])
    assert result.code == 1 and "shards must not overlap" in result.err
    assert not out.exists()


def test_merge_refuses_a_failed_build_naming_it(parts, tmp_path):
    proj, _, path, made = parts
    record = json.loads(made[1].read_text())
    record["builds"][0].update(status="failed", digest=None, error="test command exited 1")
    made[1].write_text(json.dumps(record))
    result, out = merge(proj, tmp_path, path, *made)
    name = record["builds"][0]["component"]
    assert result.code == 1
    assert f"component {name!r} failed: test command exited 1" in result.err
    assert not out.exists()


def test_merge_refuses_parts_of_another_plan(parts, tmp_path):
    proj, _, path, made = parts
    other = tmp_path / "other-plan.json"
    assert proj.run("build", "--plan", "--shards", "3", "--output", str(other)).code == 0
    result, out = merge(proj, tmp_path, str(other), *made)
    assert result.code == 1 and "carried out another plan" in result.err
    assert not out.exists()


def test_merge_refuses_a_part_of_another_commit(parts, tmp_path):
    proj, _, path, made = parts
    record = json.loads(made[0].read_text())
    record["source_commit"] = "0" * 40
    made[0].write_text(json.dumps(record))
    result, _ = merge(proj, tmp_path, path, *made)
    assert result.code == 1 and "merge the parts of one plan" in result.err


def test_a_merge_whose_reused_image_is_gone_says_plan_again(project, registry, tmp_path):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("kept"),
                    **tiny_component("lost")})
    assert proj.run("build").code == 0
    unrelated_commit(proj)
    plan, path = plan_of(proj, tmp_path, "--shards", "2")
    assert plan["shards"] == 0
    reused = {c["component"]: c for c in plan["components"] if c["action"] == "reuse"}
    assert set(reused) == {"kept", "lost"}
    lost = f"{ns.split('/', 1)[1]}/lost"
    delete_image(server, lost, reused["lost"]["digest"])  # gone between plan and merge
    assert server.tags(lost) == []
    before = Snapshot.take(repo=proj.path, registry=server)
    result, out = merge(proj, tmp_path, path)
    assert result.code == 1, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "lost was planned for reuse, but" in result.err and "plan again" in result.err
    assert not out.exists()
    before.assert_same(Snapshot.take(repo=proj.path, registry=server))  # kept not tagged


def test_nothing_to_build_plans_no_shard_and_merges_no_part(four, tmp_path):
    proj, _, _ = four
    assert proj.run("build").code == 0
    plan, path = plan_of(proj, tmp_path, "--shards", "4")
    assert plan["shards"] == 0 and plan["matrix"] == {"include": []}
    result, out = merge(proj, tmp_path, path)
    assert result.code == 0, result.err
    assert [b["status"] for b in json.loads(out.read_text())["builds"]] == ["reused"] * 4


def test_a_component_built_on_another_goes_after_it_in_its_shard(project, registry, tmp_path):
    _, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **sized("base", 100),
                    **sized("app", 30_000, extra="depends_on: [components/base]\n"),
                    **sized("other", 29_000)})
    plan, path = plan_of(proj, tmp_path, "--shards", "3")
    include = {e["shard"]: e["components"] for e in plan["matrix"]["include"]}
    assert include == {0: "base app", 1: "other"}
    assert next(c for c in plan["components"] if c["component"] == "app")["after"] == ["base"]
    result, part = shard(proj, tmp_path, path, 0, "--jobs", "2")
    assert result.code == 0, result.err
    assert [b["component"] for b in json.loads(part.read_text())["builds"]] == ["base", "app"]


def test_past_build_times_weigh_the_shards(four, tmp_path):
    proj, _, _ = four
    timings = tmp_path / "past.json"
    timings.write_text(json.dumps({"source_commit": None, "builds": [
        {"component": "tiny", "built": True, "seconds": 90.0},
        {"component": "big", "built": True, "seconds": 10.0}]}))
    plan, _ = plan_of(proj, tmp_path, "--shards", "2", "--timings", str(timings))
    sizes = {c["component"]: c["size"] for c in plan["components"]}
    assert sizes["tiny"] == 90.0 and sizes["big"] == 10.0
    assert plan["matrix"]["include"][0]["components"] == "tiny"


@pytest.mark.parametrize("args, why", [
    (["--shard", "0"], "--shard carries out a plan: give --plan FILE"),
    (["--merge"], "--merge carries out a plan: give --plan FILE"),
    (["--plan", "--dry-run"], "--plan and --dry-run do not go together"),
    (["--shards", "3"], "give them with --plan alone"),
    (["--shards", "1"], "give them with --plan alone"),  # the default, given: refused too
    (["--plan", "--shards", "300"], "--shards must be between 1 and 256"),
    (["--shard", "0", "--merge", "--plan", "p.json"], "separate steps"),
    (["--shard", "-1", "--plan", "p.json"], "shards are numbered from 0"),
])
def test_bad_fanout_flags_are_usage_errors(four, args, why):
    proj, _, _ = four
    result = proj.run("build", *args)
    assert result.code == 2 and why in result.err, result.err
    assert proj.status() == ""


def test_a_plan_file_without_shard_or_merge_says_how_plans_are_made(four, tmp_path):
    proj, _, _ = four
    result = proj.run("build", "--plan", str(tmp_path / "plan.json"))
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "a plan file is carried out with --shard N or --merge" in result.err
    assert proj.status() == ""


def test_a_shard_the_plan_does_not_have_is_a_usage_error(four, tmp_path):
    proj, _, _ = four
    _, path = plan_of(proj, tmp_path, "--shards", "2")
    result, part = shard(proj, tmp_path, path, 5)
    assert result.code == 2 and "has no shard 5 (its shards: 0, 1)" in result.err
    assert not part.exists()


@pytest.mark.parametrize("content, why", [
    ("{", "not a readable JSON build plan"),
    ('{"kind": "mlops-build-plan", "version": 9}', "version 9"),
    ('{"builds": []}', 'no "kind": "mlops-build-plan"'),
])
def test_an_unreadable_plan_is_one_line(four, tmp_path, content, why):
    proj, _, _ = four
    bad = tmp_path / "plan.json"
    bad.write_text(content)
    result, part = shard(proj, tmp_path, str(bad), 0)
    assert result.code == 1 and why in result.err
    assert len(result.err.strip().splitlines()) == 1 and not part.exists()


def test_a_plan_whose_shards_lose_a_component_is_refused(four, tmp_path):
    proj, _, _ = four
    plan, path = plan_of(proj, tmp_path, "--shards", "2")
    plan["matrix"]["include"][1]["components"] = "mid"
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    result, _ = shard(proj, tmp_path, path, 0)
    assert result.code == 1 and "exactly once" in result.err


def test_a_component_whose_base_failed_is_not_built(project, registry, tmp_path):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns),
                    **tiny_component("base", test='["python3", "-c", "raise SystemExit(3)"]'),
                    **tiny_component("app", extra="depends_on: [components/base/src]\n"),
                    **tiny_component("lone")})
    out = tmp_path / "build.json"
    result = proj.run("build", "--jobs", "2", "--output", str(out))
    assert result.code == 1
    builds = {b["component"]: b for b in json.loads(out.read_text())["builds"]}
    assert builds["base"]["error"] == "test command exited 3; not pushed"
    assert builds["app"]["status"] == "failed"
    assert builds["app"]["error"] == "not built: base, which it builds after, failed"
    assert builds["lone"]["status"] == "built"
    assert server.tags(f"{ns.split('/', 1)[1]}/app") == []


def test_a_plan_made_with_force_is_rebuilt_by_its_shard(four, tmp_path):
    # The plan says "build" for an image the registry has; its shard used to plan
    # again without --force, reuse the image, and the merge still counted it built.
    proj, server, ns = four
    assert proj.run("build", "tiny").code == 0
    plan, path = plan_of(proj, tmp_path, "tiny", "--force")
    assert plan["force"] is True
    assert [(c["component"], c["action"], c["reason"]) for c in plan["components"]] == \
        [("tiny", "build", "--force given")]
    result, part = shard(proj, tmp_path, path, 0)
    assert result.code == 0, result.err
    (entry,) = json.loads(part.read_text())["builds"]
    assert entry["status"] == "built" and entry["built"] is True, entry
    result, out = merge(proj, tmp_path, path, part)
    assert result.code == 0, result.err
    assert result.out.strip() == "merged 1 parts: 1 built, 0 reused"
    assert json.loads(out.read_text())["builds"][0]["status"] == "built"


def test_a_plan_without_force_says_so_and_a_bad_force_is_refused(four, tmp_path):
    proj, _, _ = four
    plan, path = plan_of(proj, tmp_path, "tiny")
    assert plan["force"] is False
    plan["force"] = "yes"
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    result, part = shard(proj, tmp_path, path, 0)
    assert result.code == 1 and "force is not true or false" in result.err, result.err
    assert not part.exists()


@pytest.mark.parametrize("args", [["--dry-run"], ["--plan", "--shards", "2"]])
def test_a_plan_that_cannot_ask_the_registry_is_exit_1(project, tmp_path, args):
    # A dead registry used to plan a rebuild of everything, exit 0, as if it had answered.
    from tests.support.services import free_port

    proj = project({"mlops.yaml": mlops_yaml(f"127.0.0.1:{free_port()}/ns"),
                    **tiny_component("one"), **tiny_component("two")})
    out = tmp_path / "plan.json"
    extra = ["--output", str(out)] if "--plan" in args else []
    before = Snapshot.take(repo=proj.path)
    result = proj.run("build", *args, *extra, "--json",
                      env={"MLOPS_REGISTRY_RETRIES": "1", "MLOPS_REGISTRY_TIMEOUT": "2"})
    assert result.code == 1, result.out
    assert result.json["ok"] is False and result.json["exit_code"] == 1
    error = result.json["error"]
    assert error.startswith("registry lookup for one failed (") and \
        "connection refused" in error and "(2 of 2 components unanswered)" in error, error
    assert not out.exists()
    before.assert_same(Snapshot.take(repo=proj.path))
