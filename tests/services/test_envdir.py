"""The environment store: every path of an environment, and its record, from one place."""

from __future__ import annotations

import pytest

from mlops import release as rel
from mlops.config import load_config
from mlops.errors import ConfigError, UsageError
from mlops.services.envdir import EnvDir, environment
from tests.conftest import REPO_ROOT

DIGEST = "sha256:" + "cd" * 32
RECORD = rel.EnvRecord("staging", rel.Release("a" * 40, {"serve": rel.Image("r/serve", DIGEST)}),
                       "dev")


def test_paths_are_spelled_once(tmp_path):
    env = EnvDir(tmp_path, "staging")
    assert env.where == "environments/staging"
    assert env.kustomization == tmp_path / "environments/staging/kustomization.yaml"
    assert env.record_path == tmp_path / "environments/staging/release.yaml"
    assert env.patch_path == tmp_path / "environments/staging/inferenceservice-patch.yaml"
    assert env.pipeline_output("training") == "environments/staging/pipelines/training.yaml"


def test_a_record_round_trips_and_none_means_no_release_yet(tmp_path):
    env = EnvDir(tmp_path, "staging")
    assert env.read_record() is None and not env.has_record()
    env.path.mkdir(parents=True)
    env.write_record(RECORD)
    assert env.has_record() and env.read_record() == RECORD


def test_another_environments_record_is_refused(tmp_path):
    EnvDir(tmp_path, "staging").path.mkdir(parents=True)
    EnvDir(tmp_path, "staging").write_record(RECORD)
    prod = EnvDir(tmp_path, "prod")
    prod.path.mkdir(parents=True)
    prod.record_path.write_text(EnvDir(tmp_path, "staging").record_path.read_text())
    with pytest.raises(ConfigError, match="^environments/prod/release.yaml: is the record of "
                                          "environment 'staging', not 'prod'$"):
        prod.read_record()


def test_an_unknown_environment_is_a_usage_error():
    config = load_config(REPO_ROOT, {})
    assert environment(config, "dev").name == "dev"
    with pytest.raises(UsageError, match="qa"):
        environment(config, "qa")


@pytest.mark.parametrize("link, target", [
    ("environments/staging", "prod"),  # the whole folder: staging's writes land in prod
    ("environments/staging/release.yaml", "../prod/release.yaml"),
    ("environments/staging/pipelines", "/tmp"),  # outside the repository
    ("environments", "/tmp"),
])
def test_a_symbolic_link_in_an_environment_is_refused_before_any_write(tmp_path, link, target):
    (tmp_path / "environments/prod/pipelines").mkdir(parents=True)
    staging = tmp_path / "environments/staging"
    if link != "environments/staging":
        staging.mkdir(parents=True, exist_ok=True)
    if link == "environments":
        (tmp_path / "environments").rename(tmp_path / "real")
    (tmp_path / link).symlink_to(target)
    env = EnvDir(tmp_path, "staging")
    with pytest.raises(ConfigError, match=rf"^{link}: is a symbolic link"):
        env.write_record(RECORD)
    with pytest.raises(ConfigError, match=rf"^{link}: is a symbolic link"):
        env.read_record()
    assert not (tmp_path / "environments/prod/release.yaml").exists()
