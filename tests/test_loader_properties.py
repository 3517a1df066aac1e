"""Every loader of user files, fed generated hostile documents (issue 16).

Nested far past any limit, duplicate keys, huge numbers, oversized, or just
arbitrary text: each loader either returns a value or refuses with one line
in the error type its command maps to a documented exit code (ConfigError:
1, GateFailed: 3). Never a traceback, never a RecursionError, never a second
line. Pure functions and files in a temp dir; no services.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops import overlay, safejson
from mlops import release as rel
from mlops.adapters import safeyaml, yamlio
from mlops.buildrecord import read_build_record
from mlops.config import load_config
from mlops.errors import ConfigError, GateFailed
from mlops.services.evidence import read_metrics_file

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=8))
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=12)


def nested(depth: int, flow: bool) -> str:
    """A document nested `depth` deep: JSON-style brackets, or YAML block indentation."""
    if flow:
        return "x: " + "[" * depth + "1" + "]" * depth + "\n"
    return "".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + "v: 1\n"


def duplicated(key: str, value: str) -> str:
    return json.dumps({"a": 1})[:-1] + f', "{key}": {value}, "{key}": {value}}}'


hostile_text = st.one_of(
    st.text(max_size=300),
    st.builds(nested, st.integers(1, 3000), st.booleans()),
    st.builds(duplicated, st.sampled_from(["a", "builds", "accuracy", "registry"]),
              st.sampled_from(["1", "[]", "{}", '"x"'])),
    st.builds(lambda n: '{"accuracy": ' + "9" * n + "}", st.integers(1, 2000)),
    trees.map(json.dumps),
    st.builds(lambda tree, pad: json.dumps(tree) + " " * pad, trees,
              st.sampled_from([0, 1, (16 << 20) + 1])),
)


def one_line(error: Exception) -> None:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text, repr(text)


@contextlib.contextmanager
def _file(text: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="loader-prop-") as folder:
        path = Path(folder) / "input"
        path.write_text(text)
        yield path


@SETTINGS
@given(hostile_text)
def test_json_loader(text):
    try:
        safejson.loads(text)
    except safejson.JsonProblem as exc:
        one_line(exc)


@SETTINGS
@given(hostile_text)
def test_build_record_and_metrics_files(text):
    with _file(text) as path:
        try:
            read_build_record(path)
        except ConfigError as exc:
            one_line(exc)
        try:
            read_metrics_file(path)
        except GateFailed as exc:
            one_line(exc)


@SETTINGS
@given(hostile_text)
def test_yaml_loaders(text):
    for load in (lambda: safeyaml.load(text, "f.yaml"), lambda: yamlio.loads(text, "f.yaml"),
                 lambda: overlay.parse(text, "kustomization.yaml"),
                 lambda: rel.parse(text, "release.yaml")):
        try:
            load()
        except ConfigError as exc:
            one_line(exc)


@SETTINGS
@given(hostile_text)
def test_mlops_yaml(text):
    with _file(text) as path:
        (path.parent / "mlops.yaml").write_text(text)
        try:
            load_config(path.parent, {})
        except ConfigError as exc:
            one_line(exc)
