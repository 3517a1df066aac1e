from pathlib import Path

import pytest

from mlops.components import load_component, load_components
from mlops.config import load_config
from mlops.errors import ConfigError


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


COMPONENT = {
    "components/a/component.yaml": "name: a\nversion: 1.2.3\n",
    "components/a/Dockerfile": "FROM scratch\n",
}


def test_config_defaults_and_env_override(tmp_path):
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\n"})
    config = load_config(tmp_path, environ={})
    assert config.registry == "127.0.0.1:5000/ns"
    assert config.build.jobs == 2 and config.git.remote == "origin" and config.git.branch == "main"
    assert load_config(tmp_path, environ={"MLOPS_REGISTRY": "r.example:443/x"}).registry == (
        "r.example:443/x"
    )


def test_environments_keep_their_order(tmp_path):
    write(tmp_path, {"mlops.yaml": "registry: r:1/n\nenvironments:\n  - name: dev\n"
                     "    require_digest: false\n  - name: prod\n"})
    envs = load_config(tmp_path, environ={}).environments
    assert [e.name for e in envs] == ["dev", "prod"]
    assert [e.require_digest for e in envs] == [False, True]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry: [\n", "mlops.yaml:2: invalid YAML"),
        ("registry: a:1/b\nregistry: c:1/d\n", "mlops.yaml:2: invalid YAML: found duplicate key"),
        ("registry: a:1/b\nbuild:\n  jbos: 3\n", "mlops.yaml:3: unknown key 'jbos' in build; did you mean 'jobs'?"),
        ("registry: a:1/b\nbuild:\n  jobs: zero\n", "mlops.yaml:3: jobs must be a whole number"),
        ("registry: http://a:1/b\n", "mlops.yaml:1: registry must look like host[:port]"),
        # docker refuses these at build time, so validate must refuse them first
        ("build:\n  jobs: 1\nregistry: BAD\n", "mlops.yaml:3: registry must look like host"),
        ("registry: UPPER/ml\n", "mlops.yaml:1: registry must look like host[:port]"),
        ("registry: host:99999/x\n", "mlops.yaml:1: registry must look like host[:port]"),
        ("registry: a//b\n", "mlops.yaml:1: registry must look like host[:port]"),
        ("registry: r.example/ML\n", "'ML' is not a repository path component"),
        ("registry: a:1/b\nenvironments:\n  - name: dev\n  - name: dev\n", "listed twice"),
        ("registry: a:1/b\nenvironments:\n  - name: ../x\n", "must not contain '..'"),
        ("registry: a:1/b\nenvironments:\n  - name: dev\n    namespace: ml\n  - name: prod\n"
         "    namespace: ml\n", "mlops.yaml:5: environments dev and prod share the namespace "
         "'ml'; each needs its own"),
        ("registry: a:1/b\nenvironments:\n  - name: dev\n  - name: staging\n    namespace: dev\n",
         "mlops.yaml:4: environments dev and staging share the namespace 'dev'"),
        ("registry: a:1/b\nenvironments:\n  - name: dev\n    application: ml\n  - name: prod\n"
         "    application: ml\n", "environments dev and prod share the application 'ml'"),
        ("x: &a [1]\ny: *a\nregistry: a:1/b\n", "mlops.yaml:2: YAML anchors and aliases are not allowed"),
        ("", "mlops.yaml:1: file is empty"),
    ],
)
def test_bad_config_is_one_located_line(tmp_path, text, expected):
    write(tmp_path, {"mlops.yaml": text})
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, environ={})
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_component_loads_with_defaults(tmp_path):
    write(tmp_path, COMPONENT)
    spec = load_component(tmp_path, "a")
    assert (spec.name, spec.version, spec.folder) == ("a", "1.2.3", "components/a")
    assert spec.dockerfile == "components/a/Dockerfile" and spec.context == "components/a"
    assert spec.test is None and spec.depends_on == ()


def test_test_command_string_is_split_without_a_shell(tmp_path):
    write(tmp_path, {**COMPONENT, "components/a/component.yaml":
                     "name: a\nversion: 1.0.0\ntest: python3 -c 'print(1); print(2)'\n"})
    assert load_component(tmp_path, "a").test == ("python3", "-c", "print(1); print(2)")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("name: a\nversion: [\n", "components/a/component.yaml:3: invalid YAML"),
        ("name: b\nversion: 1.0.0\n", "components/a/component.yaml:1: name 'b' does not match its folder 'a'"),
        ("name: A\nversion: 1.0.0\n", "name 'A' must be lowercase"),
        ("name: a b\nversion: 1.0.0\n", "must be lowercase"),
        ("name: ../a\nversion: 1.0.0\n", "must not contain '..'"),
        ("name: a/b\nversion: 1.0.0\n", "must not contain '..' or path separators"),
        ("name: a\nversion: 1.0\n", "components/a/component.yaml:2: version must be a semantic version"),
        ("name: a\nversion: 1.0.0\ndepends_on: [../outside]\n", "has a '..' part"),
        ("name: a\nversion: 1.0.0\ndepends_on: [/etc]\n", "is absolute"),
        ("name: a\nversion: 1.0.0\ndepends_on: [libs/missing]\n", "depends_on path not found: libs/missing"),
        ("name: a\nversion: 1.0.0\ndepend_on: [x]\n", "unknown key 'depend_on' in component.yaml; did you mean 'depends_on'?"),
        ("name: a\nversion: 1.0.0\ndockerfile: Nope\n", "Dockerfile not found: components/a/Nope"),
        ("version: 1.0.0\n", "missing required key 'name'"),
        ("name: a\nversion: 1.0.0\nbuild_args: {BAD-KEY: 1}\n", "not a valid build arg name"),
        ("name: a\nversion: 1.0.0\ntest: []\n", "test must not be empty"),
    ],
)
def test_bad_component_is_one_located_line(tmp_path, spec, expected):
    write(tmp_path, {**COMPONENT, "components/a/component.yaml": spec})
    with pytest.raises(ConfigError) as err:
        load_component(tmp_path, "a")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_dockerfile(tmp_path):
    write(tmp_path, {"components/a/component.yaml": "name: a\nversion: 1.0.0\n"})
    with pytest.raises(ConfigError, match="Dockerfile not found: components/a/Dockerfile"):
        load_component(tmp_path, "a")


def test_components_are_discovered_sorted(tmp_path):
    write(tmp_path, {**COMPONENT, "components/b/component.yaml": "name: b\nversion: 0.0.1\n",
                     "components/b/Dockerfile": "FROM scratch\n", "components/notes/README": "x"})
    assert [c.name for c in load_components(tmp_path)] == ["a", "b"]


def test_parse_cache_hits_and_still_checks_the_file_system(tmp_path):
    from mlops.cache import ParseCache

    write(tmp_path, COMPONENT)
    cache = ParseCache(tmp_path / "cache.json")
    first = load_components(tmp_path, cache)
    cache.save()
    assert (tmp_path / "cache.json").exists()
    reloaded = ParseCache(tmp_path / "cache.json")
    assert load_components(tmp_path, reloaded) == first
    (tmp_path / "components/a/Dockerfile").unlink()
    with pytest.raises(ConfigError, match="components/a/component.yaml:1: Dockerfile not found"):
        load_components(tmp_path, reloaded)


def test_parse_cache_misses_when_the_file_changes(tmp_path):
    from mlops.cache import ParseCache

    write(tmp_path, COMPONENT)
    cache = ParseCache(tmp_path / "cache.json")
    load_components(tmp_path, cache)
    write(tmp_path, {"components/a/component.yaml": "name: a\nversion: 2.0.0\n"})
    assert load_components(tmp_path, cache)[0].version == "2.0.0"


def test_corrupt_parse_cache_is_ignored(tmp_path):
    from mlops.cache import ParseCache

    write(tmp_path, {**COMPONENT, "cache.json": "{not json"})
    assert load_components(tmp_path, ParseCache(tmp_path / "cache.json"))[0].name == "a"


def test_config_cache_hit_still_applies_the_environment(tmp_path):
    from mlops.cache import ParseCache

    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\nbuild:\n  jobs: 3\n"})
    cache = ParseCache(tmp_path / "cache.json")
    first = load_config(tmp_path, environ={}, cache=cache)
    assert cache.get(next(iter(cache._data))) is not None  # stored after validating
    again = load_config(tmp_path, environ={"MLOPS_REGISTRY": "r:1/other"}, cache=cache)
    assert again.build.jobs == first.build.jobs == 3
    assert again.registry == "r:1/other"


def test_config_cache_misses_on_change_and_errors_stay_located(tmp_path):
    from mlops.cache import ParseCache

    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\n"})
    cache = ParseCache(tmp_path / "cache.json")
    load_config(tmp_path, environ={}, cache=cache)
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\nbuild:\n  jbos: 1\n"})
    with pytest.raises(ConfigError, match="mlops.yaml:3: unknown key 'jbos'"):
        load_config(tmp_path, environ={}, cache=cache)


def _fresh_load(root: Path) -> tuple[str, bool]:
    """(registry, whether ruamel was imported) from load_config in a new interpreter."""
    import subprocess
    import sys

    code = ("import sys\nfrom pathlib import Path\nfrom mlops.config import load_config\n"
            f"c = load_config(Path({str(root)!r}), environ={{}})\n"
            "print(c.registry, 'ruamel.yaml' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], out[1] == "True"


def test_a_clone_keeps_its_validated_config_and_parses_a_changed_one(tmp_path):
    (tmp_path / ".git").mkdir()
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\n"})
    assert _fresh_load(tmp_path) == ("127.0.0.1:5000/ns", True)
    assert (tmp_path / ".git/mlops/config-cache.json").is_file()
    assert _fresh_load(tmp_path) == ("127.0.0.1:5000/ns", False)  # no YAML parsed
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/other\n"})
    assert _fresh_load(tmp_path) == ("127.0.0.1:5000/other", True)
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\nbuild: {jobs: 0}\n"})
    with pytest.raises(ConfigError, match=r"mlops.yaml:2"):
        load_config(tmp_path, environ={})


def test_a_tampered_config_cache_entry_is_checked_again(tmp_path):
    import json

    (tmp_path / ".git").mkdir()
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\n"})
    load_config(tmp_path, environ={})
    cache_file = tmp_path / ".git/mlops/config-cache.json"
    entries = json.loads(cache_file.read_text())
    cache_file.write_text(json.dumps({k: {"registry": "../evil"} for k in entries}))
    registry, _ = _fresh_load(tmp_path)
    assert registry == "127.0.0.1:5000/ns"


def test_environments_from_validated_content_equal_the_parsed_ones(tmp_path):
    (tmp_path / ".git").mkdir()
    write(tmp_path, {"mlops.yaml": "registry: r:1/lazy\nenvironments:\n  - name: dev\n"
                     "    require_digest: false\n  - name: prod\n    approval: true\n"})
    parsed = load_config(tmp_path, environ={})  # parsed and checked whole
    cached = load_config(tmp_path, environ={})  # from the validated content
    assert cached.environments == parsed.environments
    assert [(e.name, e.require_digest, e.approval) for e in cached.environments] == [
        ("dev", False, False), ("prod", True, True)]
    assert cached.previous("prod").name == "dev"


def test_a_tampered_cache_file_never_stands_in_for_another_copy_or_the_approvals(tmp_path):
    """The cache in the user's git dir may answer for that clone's own mlops.yaml, but
    the workspace's copy and the trust root's approvals are parsed from their text."""
    import json
    import uuid

    from mlops.config import approvals_from_text

    text = (f"registry: 127.0.0.1:5000/t{uuid.uuid4().hex[:8]}\n"
            "approvals:\n  release_managers: [alice@example.com]\n")
    clone, workspace = tmp_path / "clone", tmp_path / "workspace"
    for root in (clone, workspace):
        root.mkdir()
        write(root, {"mlops.yaml": text})
    (clone / ".git").mkdir()
    cache_file = clone / ".git/mlops/config-cache.json"
    cache_file.parent.mkdir(parents=True)
    from mlops.cache import ParseCache
    from mlops.tracked import git_blob_id

    key = ParseCache.key("mlops.yaml", git_blob_id(text.encode()))
    forged = {"registry": "127.0.0.1:5000/x",
              "approvals": {"release_managers": ["mallory@example.com"]}}
    cache_file.write_text(json.dumps({key: forged}))

    assert load_config(clone, environ={}).approvals.release_managers == ("mallory@example.com",)
    assert load_config(workspace, environ={}).approvals.release_managers == (
        "alice@example.com",)
    assert approvals_from_text(text, "mlops.yaml@abc").release_managers == (
        "alice@example.com",)


def test_a_bad_mlops_registry_is_refused_like_the_file_s(tmp_path):
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns\n"})
    with pytest.raises(ConfigError, match=r"^\$MLOPS_REGISTRY must look like .*port outside"):
        load_config(tmp_path, environ={"MLOPS_REGISTRY": "r.example:70000/x"})


def test_a_registry_docker_takes_loads_as_written(tmp_path):
    # Hosts may be mixed-case (distribution/reference's domain grammar); only paths may not.
    write(tmp_path, {"mlops.yaml": "registry: Registry.Example.com/ml\n"})
    assert load_config(tmp_path, environ={}).registry == "Registry.Example.com/ml"


def test_a_trailing_slash_after_the_registry_is_dropped_as_before(tmp_path):
    write(tmp_path, {"mlops.yaml": "registry: 127.0.0.1:5000/ns/\n"})
    assert load_config(tmp_path, environ={}).registry == "127.0.0.1:5000/ns"


@pytest.mark.parametrize("section", ["build", "approvals", "git", "prometheus", "argocd",
                                     "tracking"])
@pytest.mark.parametrize("value", ["5", "text", "\n  - 1"])
def test_a_section_that_is_no_mapping_is_located_at_its_key(tmp_path, section, value):
    # a scalar carries no line of its own: it was reported at mlops.yaml:1
    write(tmp_path, {"mlops.yaml": f"registry: a:1/b\n\n{section}: {value}\n"})
    with pytest.raises(ConfigError, match=f"^mlops.yaml:3: {section} must be a mapping$"):
        load_config(tmp_path, environ={})


CANARY = "    canary:\n      steps: [10]\n      analysis:\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("  - 5\n", "mlops.yaml:4: environment must be a mapping"),
    ("  - name: dev\n    gates: 5\n", "mlops.yaml:5: gates of dev must be a list"),
    ("  - name: dev\n    gates:\n      - 5\n", "mlops.yaml:6: a gate of dev must be a mapping"),
    ("  - name: dev\n    schedules: x\n", "mlops.yaml:5: schedules of dev must be a list"),
    ("  - name: dev\n    schedules:\n      - x\n",
     "mlops.yaml:6: a schedule of dev must be a mapping"),
    ("  - name: dev\n    canary: 5\n", "mlops.yaml:5: canary of dev must be a mapping"),
    ("  - name: dev\n    canary:\n      steps: [10]\n      analysis: 5\n",
     "mlops.yaml:7: canary analysis of dev must be a mapping"),
    (f"  - name: dev\n{CANARY}        metrics: 5\n",
     "mlops.yaml:8: canary analysis metrics of dev must be a non-empty list"),
    (f"  - name: dev\n{CANARY}        metrics:\n          - 5\n",
     "mlops.yaml:9: an analysis metric of dev must be a mapping"),
])
def test_a_part_of_an_environment_that_is_mistyped_is_located_at_its_key(tmp_path, text,
                                                                          expected):
    write(tmp_path, {"mlops.yaml": f"registry: a:1/b\n\nenvironments:\n{text}"})
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, environ={})
    assert str(err.value) == expected  # each was reported at mlops.yaml:1
