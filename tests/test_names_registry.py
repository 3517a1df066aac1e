"""`names.registry_problem`: the one check of a registry prefix, against docker's grammar
(distribution/reference: mixed-case hosts, lowercase path components)."""

from __future__ import annotations

import pytest

from mlops.names import REGISTRY_MAX, registry_problem


@pytest.mark.parametrize("registry", [
    "127.0.0.1:5000/mlops", "registry.example.com/ml", "Registry.Example.com/ml",
    "localhost", "localhost:5000/a/b", "[::1]:5000/ns", "host:65535/x", "host:1/x",
    "r.example/a.b_c__d---e", "team", "team/sub", "r.example",
])
def test_accepts_what_docker_takes_as_an_image_prefix(registry):
    assert registry_problem(registry) is None


@pytest.mark.parametrize("registry, why", [
    ("BAD", "Docker Hub path"),
    ("team/ML", "Docker Hub path"),
    ("Bad_Registry", "Docker Hub path"),
    ("registry.example.com/ML", "'ML' is not a repository path component"),
    ("r.example/a_-b", "'a_-b' is not a repository path component"),
    ("r.example/-a", "'-a' is not a repository path component"),
    ("r.example/a___b", "'a___b' is not a repository path component"),
    ("r.example/x/../etc", "'..' is not a repository path component"),
    ("host:99999/x", "port outside 1-65535"),
    ("host:0/x", "port outside 1-65535"),
    ("host:/x", "is not a host[:port]"),
    ("-host.example/x", "is not a host[:port]"),
    ("user:token@host.example/x", "holds an '@'"),
    ("\uff11.example/x", "is not a host[:port]"),
    ("host.example:\uff15000/x", "is not a host[:port]"),  # a full-width digit in the port
    ("a/b/", "empty component"),
    ("/a", "empty component"),
    ("a//b", "empty component"),
    ("http://a:1/b", "has a scheme"),
    ("r.example/x\n", "is not a repository path component"),
    ("", "non-empty string"),
    (None, "non-empty string"),
    ("r.example/" + "x" * (REGISTRY_MAX - len("r.example/") + 1), "longer than"),
])
def test_refuses_what_docker_would_refuse_and_says_which_part(registry, why):
    problem = registry_problem(registry)
    assert problem is not None and why in problem, problem


def test_the_longest_prefix_leaves_room_for_any_component_name():
    longest = "r.example/" + "x" * (REGISTRY_MAX - len("r.example/"))
    assert registry_problem(longest) is None
    assert len(f"{longest}/{'c' * 63}") == 255  # distribution's NameTotalLengthMax
