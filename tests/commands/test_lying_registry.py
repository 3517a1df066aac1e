"""A registry's answers are checked, never taken on its word (issue 14, attack 6).

A registry (or whatever sits between it and us) can answer a manifest request
with other bytes under the `Docker-Content-Digest` it is asked for, or answer
any HEAD with 200. mlops asks by GET and hashes what it got
(`mlops.adapters.registry.Registry.manifest_digest`), so such an answer is refused,
in `build`'s lookups and in every check `promote` makes.
"""

from __future__ import annotations

import json

import pytest

from mlops.adapters.registry import Registry
from mlops.errors import RegistryError
from mlops.inputs import ih_tag
from mlops.names import split_image
from tests.commands.conftest import promote
from tests.support.liar import LyingRegistry

pytestmark = pytest.mark.usefixtures("docker_engine")


def _entries(built) -> dict[str, dict]:
    return {b["component"]: b for b in json.loads(built[1].read_text())["builds"]}


def _evaluate_manifest(registry_server, entries) -> bytes:
    evaluate = entries["evaluate"]
    repository = split_image(evaluate["image"])[1]
    return Registry(registry_server.host).get_manifest(repository, evaluate["digest"])[0]


def test_a_manifest_that_is_not_its_digest_is_refused(registry_server, built):
    entries = _entries(built)
    train = entries["train"]
    repository, tag = split_image(train["image"])[1], ih_tag(train["input_hash"])
    other = _evaluate_manifest(registry_server, entries)
    with LyingRegistry(f"http://{registry_server.host}",
                       {tag: other, train["digest"]: other}) as liar:
        client = Registry(liar.host)
        for reference in (tag, train["digest"]):
            with pytest.raises(RegistryError) as err:
                client.manifest_digest(repository, reference)
            assert f"registry {liar.host} served a manifest for {repository}:{reference} " \
                   "whose sha256 is sha256:" in str(err.value)
            assert f"not the {train['digest']} it claims" in str(err.value)
        assert liar.lies == 2
        assert client.manifest_digest(repository, entries["train"]["tags"][0]) == train["digest"]


def test_promote_through_a_lying_registry_refuses_and_changes_nothing(play, built,
                                                                     registry_server):
    entries = _entries(built)
    train = entries["train"]
    other = _evaluate_manifest(registry_server, entries)
    with LyingRegistry(f"http://{registry_server.host}",
                       {ih_tag(train["input_hash"]): other}) as liar:
        record = play.base / "via-liar.json"  # the same build, as seen through the liar
        record.write_text(built[1].read_text().replace(registry_server.host, liar.host))
        head = play.remote_head()
        result = play.proj.run("promote", "--to", "dev", "--build", str(record),
                               env={"MLOPS_REGISTRY": built[0].replace(registry_server.host,
                                                                       liar.host)})
        assert liar.lies >= 1
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "served a manifest for" in result.err and "whose sha256 is" in result.err
    assert play.remote_head() == head
    control = promote(play, "--to", "dev", "--build", str(built[1]))  # the truth passes
    assert control.code == 0, control.err
