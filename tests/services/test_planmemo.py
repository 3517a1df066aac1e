"""The dry-run memo (mlops.services.planmemo): an unchanged clone's dry run is answered
from the last one, and anything the plan reads that moves makes it plan again.

The property under test: whatever changed, a dry run with the memo in place prints
exactly what one without it prints. Each case plans once (writing the memo), makes
one change, then compares a run that finds the memo with one that does not.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mlops import config, links
from mlops.services import planmemo
from tests.conftest import mlops_yaml, tiny_component

FAKE_DIGEST = "sha256:" + "5" * 64


def memo_of(proj) -> Path:
    return proj.path / ".git" / planmemo.MEMO


def read_memo(proj) -> tuple[bytes, list, str]:
    memo = planmemo.unpack(memo_of(proj).read_bytes())
    assert memo is not None
    return memo


def write_memo(proj, key: bytes, code: list, text: str) -> None:
    memo_of(proj).write_bytes(planmemo.pack(key, code, text))


def seed_cache(proj) -> dict:
    """Every planned image in the local digest cache, as a build that pushed them would
    leave it (no push: a dry run trusts the cache, which is what is under test)."""
    plan = proj.run("build", "--dry-run", "--json").json["plan"]
    memo_of(proj).unlink(missing_ok=True)
    cache = {f"{p['image']}:{next(t for t in p['tags'] if t.startswith('ih-'))}": FAKE_DIGEST
             for p in plan}
    path = proj.path / ".git" / "mlops" / "build-cache.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(cache))
    return cache


@pytest.fixture
def repo(project, registry):
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("alpha"),
                    **tiny_component("beta")})
    seed_cache(proj)
    first = proj.run("build", "--dry-run")
    assert first.code == 0 and "0 to build, 2 to reuse" in first.out, first.out + first.err
    assert memo_of(proj).is_file()
    return proj


def dry_run(proj, *args, env=None):
    res = proj.run("build", "--dry-run", *args, env=env)
    return res.code, res.out


def without_memo(proj, *args, env=None):
    memo_of(proj).unlink(missing_ok=True)
    return dry_run(proj, *args, env=env)


def test_an_unchanged_dry_run_prints_what_the_memo_holds(repo):
    before = dry_run(repo)
    key, code, text = read_memo(repo)
    write_memo(repo, key, code, text.replace("to reuse", "to reuse [from the memo]"))
    assert dry_run(repo) == (0, before[1].replace("to reuse", "to reuse [from the memo]"))
    assert without_memo(repo) == before


def test_json_and_text_are_kept_apart(repo):
    text = dry_run(repo)
    code, out = dry_run(repo, "--json")
    assert code == 0 and json.loads(out)["dry_run"] is True
    assert dry_run(repo, "--json") == (0, out)  # now the memo's
    assert dry_run(repo) == text


def _edit(proj):
    (proj.path / "components/alpha/src/main.py").write_text("print('edited')\n")


def _commit_edit(proj):
    _edit(proj)
    proj.commit("edit alpha")


def _stage_new_file(proj):
    (proj.path / "components/alpha/src/extra.py").write_text("x = 1\n")
    proj.git("add", "components/alpha/src/extra.py")


def _delete(proj):
    (proj.path / "components/beta/src/main.py").unlink()


def _make_executable(proj):
    os.chmod(proj.path / "components/beta/src/main.py", 0o755)


def _untracked_component(proj):
    proj.write(tiny_component("gamma"))


def _config_edit(proj):
    text = (proj.path / "mlops.yaml").read_text()
    (proj.path / "mlops.yaml").write_text(text.replace("build_args:", "build_args:\n    X: y"))


def _forget_one_digest(proj):
    path = proj.path / ".git" / "mlops" / "build-cache.json"
    cache = json.loads(path.read_text())
    cache.pop(sorted(cache)[0])
    path.write_text(json.dumps(cache))


def _empty_commit(proj):
    proj.commit("nothing")


def _other_branch(proj):
    proj.git("checkout", "-q", "-b", "other")
    _commit_edit(proj)


def _spec_edit(proj):
    spec = proj.path / "components/beta/component.yaml"
    spec.write_text(spec.read_text().replace("0.1.0", "0.2.0"))


def _remove_component_folder_file(proj):
    proj.git("rm", "-q", "--cached", "components/beta/component.yaml")


CHANGES = {
    "an uncommitted edit": _edit,
    "a committed edit": _commit_edit,
    "a staged new file": _stage_new_file,
    "a deleted file": _delete,
    "a file made executable": _make_executable,
    "a new, untracked component": _untracked_component,
    "an edited mlops.yaml": _config_edit,
    "a digest gone from the local cache": _forget_one_digest,
    "an empty commit (the commit tags move)": _empty_commit,
    "another branch": _other_branch,
    "an edited component.yaml": _spec_edit,
    "a component.yaml no longer tracked": _remove_component_folder_file,
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
@pytest.mark.parametrize("mode", [(), ("--json",)], ids=["text", "json"])
def test_whatever_changes_the_memo_prints_what_a_plan_prints(repo, change, mode):
    unchanged = dry_run(repo, *mode)  # (the JSON plan's memo is written here)
    _stale(repo)  # a memo that answered anyway would print "stale"
    change(repo)
    found = dry_run(repo, *mode)
    assert found == without_memo(repo, *mode)
    if mode:  # the JSON plan shows every change (the text has no commit tags)
        assert found != unchanged  # the memo did not answer for it


COMMAND_LINES = {
    "one component": ("alpha",),
    "a --build-arg": ("--build-arg", "X=1"),
    "--no-push": ("--no-push",),
    "--json": ("--json",),
}


@pytest.mark.parametrize("args", COMMAND_LINES.values(), ids=COMMAND_LINES.keys())
def test_another_command_line_is_planned_for_itself(repo, args):
    _stale(repo)
    assert dry_run(repo) == (0, "stale\n")  # the memo of the plain command line
    found = dry_run(repo, *args)
    assert found[0] == 0 and found[1] != "stale\n"
    assert found == without_memo(repo, *args)


def _stale(proj) -> None:
    """The memo's text replaced, its key left as it is."""
    key, code, _text = read_memo(proj)
    write_memo(proj, key, code, "stale\n")


def test_the_registry_variable_is_part_of_the_key(repo, registry):
    server, _ns = registry
    env = {config.REGISTRY_ENV: f"{server.host}/elsewhere"}
    _stale(repo)
    found = dry_run(repo, "--json", env=env)
    assert found == without_memo(repo, "--json", env=env)
    assert json.loads(found[1])["plan"][0]["image"] == f"{server.host}/elsewhere/alpha"


@pytest.mark.parametrize("name", planmemo.SKIP_ENV)
def test_a_variable_that_may_hold_credentials_turns_the_memo_off(repo, name):
    _stale(repo)
    memo = memo_of(repo).read_bytes()
    value = {"MLOPS_TRUST_ROOT": "0" * 40}.get(name, "http://user:secret@127.0.0.1:1")
    res = repo.run("build", "--dry-run", env={name: value})
    assert res.out != "stale\n"  # not read
    assert memo_of(repo).read_bytes() == memo  # nor written
    assert (res.code, res.out) == without_memo(repo, env={name: value})


def test_in_ci_the_dry_run_plans_and_its_summary_gets_the_document(repo, tmp_path):
    _stale(repo)
    memo = memo_of(repo).read_bytes()
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    res = repo.run("build", "--dry-run", env=env)
    assert res.code == 0 and res.out != "stale\n"
    assert memo_of(repo).read_bytes() == memo
    assert repo.git("rev-parse", "HEAD")[:12] in summary.read_text()  # the plan's document


def test_naming_components_plans_as_before(project, registry):
    """A plan of some components still loads and checks them all: an unnamed
    component's missing input fails it, and no key covers that."""
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), "libs/shared/util.py": "u = 1\n",
                    **tiny_component("alpha"),
                    **tiny_component("beta", extra="depends_on: [libs/shared]\n")})
    seed_cache(proj)
    assert dry_run(proj, "alpha")[0] == 0
    assert not memo_of(proj).exists()
    shutil.rmtree(proj.path / "libs/shared")
    found = dry_run(proj, "alpha")
    assert found[0] != 0 and found == without_memo(proj, "alpha")


def test_a_module_that_changed_since_makes_it_plan_again(repo, tmp_path):
    module = tmp_path / "module.py"
    module.write_text("x = 1\n")
    _stale(repo)
    key, code, text = read_memo(repo)
    write_memo(repo, key, [*code, (str(module), planmemo._stat_line(module))], text)
    assert dry_run(repo) == (0, "stale\n")  # the key and the code still match
    module.write_text("x = 22\n")
    assert dry_run(repo) != (0, "stale\n")
    assert read_memo(repo)[2] != "stale\n"  # written again


GARBAGE = [b"", b"{", b"\xff\xfe", planmemo.MAGIC, planmemo.MAGIC + b"5\nab",
           planmemo.MAGIC + b"-1\n", planmemo.MAGIC + b"1\na1\nb1\nc+",
           planmemo.MAGIC + b"1\na2\nb\x001\nd"]  # the last: a module with no stat


@pytest.mark.parametrize("garbage", GARBAGE)
def test_a_memo_that_cannot_be_read_is_planned_over(repo, garbage):
    expected = without_memo(repo)
    memo_of(repo).write_bytes(garbage)
    assert dry_run(repo) == expected
    assert read_memo(repo)[2] == expected[1]


def test_a_memo_reads_back_what_was_written():
    code = [("/a/b.py", "1:2:3:4"), ("/c\td\n.py", "absent")]
    for text in ("", "plan\n", "é\udcff"):
        assert planmemo.unpack(planmemo.pack(b"k\0\n", code, text)) == (b"k\0\n", code, text)
    assert planmemo.unpack(planmemo.pack(b"k", code, "t") + b"x") is None


def _plans_without_memo(proj, *args):
    memo_of(proj).unlink(missing_ok=True)
    res = proj.run("build", "--dry-run", *args)
    assert res.code == 0, res.err
    return not memo_of(proj).exists()


def test_a_component_to_build_is_not_kept(repo):
    _forget_one_digest(repo)
    assert _plans_without_memo(repo)


def test_force_is_not_kept(repo):
    assert _plans_without_memo(repo, "--force")


def test_changed_since_is_not_kept(repo):
    assert _plans_without_memo(repo, "--changed-since", "HEAD")


def test_an_input_outside_components_is_not_kept(project, registry):
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), "libs/shared/util.py": "u = 1\n",
                    **tiny_component("alpha", extra="depends_on: [libs/shared]\n")})
    seed_cache(proj)
    assert _plans_without_memo(proj)


def test_a_tracked_symlink_is_not_kept(project, registry):
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("alpha")}, commit=False)
    os.symlink("main.py", proj.path / "components/alpha/src/link.py")
    proj.commit("with a link")
    seed_cache(proj)
    assert _plans_without_memo(proj)


def test_the_memo_names_mlops_modules_as_its_code(repo):
    _key, code, _text = read_memo(repo)
    assert code and all(Path(path).name.endswith(".py") for path, _ in code)


def test_the_names_it_keeps_without_importing_match_their_sources():
    assert planmemo.CONFIG_FILE == config.CONFIG_FILE
    assert planmemo.REGISTRY_ENV == config.REGISTRY_ENV
    assert set(planmemo.SKIP_ENV) == {config.PROMETHEUS_URL_ENV, config.TRUST_ROOT_ENV,
                                      config.TRACKING_URI_ENV}
    assert planmemo.SYMLINK == links.LINK_MODE


def test_key_parts_are_kept_apart():
    assert planmemo.memo_key(["ab", "c"]) != planmemo.memo_key(["a", "bc"])
    assert planmemo.memo_key(["a", b"b"]) == planmemo.memo_key(["a", "b"])


# -- what the plan reads from the work tree that git's listing does not vouch for ----------


def _spec_with_arg(name: str, value: str) -> str:
    return f"name: {name}\nversion: 0.1.0\nbuild_args:\n  X: \"{value}\"\n"


@pytest.mark.parametrize("bit", ["--skip-worktree", "--assume-unchanged"])
def test_a_component_yaml_git_does_not_look_at_is_not_kept(project, registry, bit):
    """With the bit set, git calls the file unchanged whatever the work tree holds, and a
    plan with no parse of the committed file cached reads the work tree's."""
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("alpha")})
    spec = proj.path / "components/alpha/component.yaml"
    proj.git("update-index", bit, "components/alpha/component.yaml")
    spec.write_text(_spec_with_arg("alpha", "1"))  # before any plan: nothing cached
    seed_cache(proj)
    assert dry_run(proj)[0] == 0
    spec.write_text(_spec_with_arg("alpha", "2"))
    assert dry_run(proj) == without_memo(proj)


def test_an_untracked_component_yaml_is_not_kept(project, registry):
    """Dockerfile and sources committed, component.yaml forgotten: git lists nothing of
    it, so an edit to it moves nothing in the key."""
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("alpha")}, commit=False)
    proj.git("add", "mlops.yaml", "components/alpha/Dockerfile", "components/alpha/src")
    proj.git("commit", "-q", "-m", "without component.yaml")
    seed_cache(proj)
    assert dry_run(proj)[0] == 0
    (proj.path / "components/alpha/component.yaml").write_text(_spec_with_arg("alpha", "2"))
    assert dry_run(proj) == without_memo(proj)


def test_a_memo_another_copy_of_mlops_wrote_is_planned_over(repo, tmp_path):
    """Two installations of one version (two checkouts, two virtualenvs) may plan
    differently: the memo stands only for the code that wrote it."""
    key, code, _text = read_memo(repo)
    copies = []
    for i, (path, _line) in enumerate(code):
        copy = tmp_path / f"other{i}" / Path(path).name
        copy.parent.mkdir()
        copy.write_bytes(Path(path).read_bytes())
        copies.append((str(copy), planmemo._stat_line(copy)))
    write_memo(repo, key, copies, "stale\n")
    assert dry_run(repo) != (0, "stale\n")


def test_a_component_yaml_a_clean_filter_hides_is_planned_again(project, registry):
    """A clean filter that drops a line: after `git add`, git sees no change while the
    work tree's file, which a plan with no parse of the committed file cached reads,
    says something else."""
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("alpha"),
                    ".gitattributes": "components/*/component.yaml filter=local\n"},
                   commit=False)
    proj.git("config", "filter.local.clean", "sed '/LOCAL$/d'")
    proj.git("config", "filter.local.smudge", "cat")
    proj.commit("with a filter")
    spec = proj.path / "components/alpha/component.yaml"
    spec.write_text("name: alpha\nversion: 0.1.0\nbuild_args: {X: '1'}  # LOCAL\n")
    proj.git("add", "-A")
    assert proj.status() == ""
    seed_cache(proj)
    assert dry_run(proj)[0] == 0
    spec.write_text("name: alpha\nversion: 0.1.0\nbuild_args: {X: '2'}  # LOCAL\n")
    proj.git("add", "-A")
    assert dry_run(proj) == without_memo(proj)


def test_mlops_yaml_rewritten_with_the_same_bytes_counts_as_moved(repo):
    """Changed and changed back while a plan read it, mlops.yaml must not leave a memo
    of the version in between under the key of the one before."""
    _stale(repo)
    assert dry_run(repo) == (0, "stale\n")
    config = repo.path / "mlops.yaml"
    config.write_bytes(config.read_bytes())
    st = config.stat()
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert dry_run(repo) == without_memo(repo)
    assert without_memo(repo)[1] != "stale\n"
