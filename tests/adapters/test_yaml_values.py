"""A scalar that only looks like a date or a number is a string or a one-line error.

Both YAML adapters used to let a constructor's own exception escape (a
ValueError for `2026-02-30`, an AttributeError for `!!timestamp abc`), so a
single odd value in mlops.yaml or a release.yaml made every command print a
traceback. Each case goes through a real file and the real loader.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops import argocd, pipelines
from mlops import release as rel
from mlops.adapters import safeyaml, yamlio
from mlops.errors import ConfigError
from tests.conftest import mlops_yaml, tiny_component
from tests.support.promotion import repo_files

HUGE = "9" * 5000  # past Python's 4300-digit limit for int(str)

# (file text, the line the error names, words the error must hold)
BAD_VALUES = [
    ("a: 1\nb:\n  - !!int abc\n", 3, "value 'abc' is not a valid !!int"),
    ("a: 1\nb: !!float abc\n", 2, "value 'abc' is not a valid !!float"),
    (f"a: 1\n\nb: {HUGE}\n", 3, "is not a valid !!int (Exceeds the limit (4300 digits)"),
    ("a:\n  b: !!timestamp abc\n", 2, "invalid YAML"),
    ("a:\n  b: !!bool maybe\n", 2, "value 'maybe' is not a valid !!bool"),
    ("a:\n  b: !!int 0x\n", 2, "value '0x' is not a valid !!int"),
]


def _load_yamlio(path):
    return yamlio.load_file(path, "conf.yaml").data


def _load_safeyaml(path):
    return safeyaml.load(safeyaml.read_text(path, "conf.yaml"), "conf.yaml")


def _load_all_safeyaml(path):
    return safeyaml.load_all(safeyaml.read_text(path, "conf.yaml"), "conf.yaml")[-1]


LOADERS = [_load_yamlio, _load_safeyaml, _load_all_safeyaml]


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize(("text", "line", "words"), BAD_VALUES)
def test_a_value_the_constructor_cannot_build_is_a_located_error(tmp_path, load, text, line,
                                                                 words):
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"conf.yaml:{line}: invalid YAML: "), message
    assert words in message
    assert "\n" not in message
    assert "set_int_max_str_digits" not in message  # Python's advice is not the user's knob
    assert len(message) < 300  # the 5000 digits are not echoed


@pytest.mark.parametrize("load", LOADERS)
def test_date_like_plain_scalars_load_as_the_text_written(tmp_path, load):
    path = tmp_path / "conf.yaml"
    path.write_text("bad: 2026-02-30\n2001-13-45: key\ngood: 2026-01-01\n"
                    "stamp: 2026-01-01T10:00:00Z\nquoted: '2026-02-30'\n")
    assert dict(load(path)) == {"bad": "2026-02-30", "2001-13-45": "key", "good": "2026-01-01",
                                "stamp": "2026-01-01T10:00:00Z", "quoted": "2026-02-30"}


def test_numbers_and_explicit_dates_still_load_as_values(tmp_path):
    """Only implicit dates changed: ints, floats, bools and `!!timestamp` are as before."""
    path = tmp_path / "conf.yaml"
    path.write_text("i: 12\nf: 1.5\nb: true\nd: !!timestamp 2026-01-01\n")
    for load in LOADERS:
        data = load(path)
        assert (data["i"], data["f"], data["b"]) == (12, 1.5, True)
        assert str(data["d"]) == "2026-01-01"


def test_a_dumped_date_like_string_reads_back_as_the_same_string():
    text = safeyaml.dump({"id": "2001-13-45", "when": "2026-01-01"})
    assert safeyaml.load(text, "release.yaml") == {"id": "2001-13-45", "when": "2026-01-01"}


def test_a_release_record_with_a_date_like_id_is_a_located_one_line_error():
    text = rel.HEADER + "apiVersion: mlops/v1\nkind: EnvironmentRelease\nid: !!int 2001-13-45\n"
    with pytest.raises(ConfigError, match=r"^release\.yaml:\d+: invalid YAML: value "
                                          r"'2001-13-45' is not a valid !!int"):
        rel.parse(text, "release.yaml")


def _with_build_arg(project, value: str, name: str = "repo"):
    config = mlops_yaml("127.0.0.1:5000/t", base="scratch").replace(
        "    BASE_IMAGE: scratch\n", f"    BASE_IMAGE: scratch\n    RELEASED: {value}\n")
    return project({"mlops.yaml": config, **tiny_component("serve")}, name=name)


def test_validate_reports_a_bad_value_in_mlops_yaml_at_its_line(project):
    result = _with_build_arg(project, "!!int 2026-02-30").run("validate")
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.err + result.out
    problems = [ln for ln in result.out.splitlines() if "mlops.yaml" in ln]
    assert len(problems) == 1, result.out
    assert problems[0].startswith("mlops.yaml:5: "), problems[0]  # the RELEASED line
    assert "value '2026-02-30' is not a valid !!int" in problems[0]
    assert result.out.splitlines()[-1] == "1 problem"


def _input_hash_tag(project, value: str, name: str) -> str:
    # No registry listens there: --no-push plans without its answer (a pushing plan is refused)
    result = _with_build_arg(project, value, name).run(
        "build", "--dry-run", "--no-push", "--json", env={"MLOPS_REGISTRY_RETRIES": "1"})
    assert result.code == 0, result.err
    return next(t for t in result.json["plan"][0]["tags"] if t.startswith("ih-"))


def test_a_date_that_is_no_calendar_day_is_a_build_arg_string(project):
    """`RELEASED: 2026-02-30` crashed every command; unquoted, it is the text quoted gives."""
    plain = _input_hash_tag(project, "2026-02-30", "plain")
    assert plain == _input_hash_tag(project, "'2026-02-30'", "quoted")
    assert plain != _input_hash_tag(project, "'2026-02-31'", "other")  # the arg is hashed


def test_validate_reports_a_bad_value_in_a_release_record(project):
    files = repo_files("127.0.0.1:5000/t")
    files["environments/dev/release.yaml"] = (
        "apiVersion: mlops/v1\nkind: EnvironmentRelease\nid: r-x\nmetrics:\n  auc: !!float high\n")
    proj = project(files)
    result = proj.run("validate")
    assert "Traceback" not in result.err + result.out
    assert result.code == 1, (result.out, result.err)
    assert "environments/dev/release.yaml:5:" in result.err + result.out
    assert "value 'high' is not a valid !!float" in result.err + result.out


def test_deep_flow_nesting_is_one_line_not_a_crashed_interpreter():
    """libyaml composes nested flow collections recursively in C: 30,000 `[` end the
    interpreter (SIGSEGV) before any handler runs. Run in a child, so that the old
    behaviour fails this test rather than the whole session."""
    code = ("from mlops.adapters import safeyaml\n"
            "from mlops.errors import ConfigError\n"
            "try:\n"
            "    safeyaml.load('id: ' + '[' * 30000 + ']' * 30000, 'release.yaml')\n"
            "except ConfigError as exc:\n"
            "    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-500:])
    assert proc.stdout.strip() == "release.yaml:1: nested deeper than the limit of 256"
    assert safeyaml.load("id: " + "[" * 200 + "]" * 200, "release.yaml") is not None


@pytest.mark.parametrize("parse", [
    lambda text: pipelines.parse_rendered(text, "p.yaml"),
    lambda text: argocd.declared_paths(text, "apps.yaml"),
], ids=["compiled pipeline", "applications"])
def test_a_hand_edited_tool_file_with_a_bad_value_is_one_line(parse):
    with pytest.raises(ConfigError, match=r"(not valid YAML|not YAML).*invalid value") as caught:
        parse("kind: Application\nmetadata:\n  name: !!int abc\n")
    assert "\n" not in str(caught.value)
