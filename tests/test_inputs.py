from mlops.components import ComponentSpec
from mlops.config import BuildSettings
from mlops.inputs import effective_build_args, ih_tag, input_hash
from mlops.tracked import TrackedFile, files_under, git_blob_id


def spec(**kw) -> ComponentSpec:
    base = dict(name="a", version="1.0.0", folder="components/a",
                dockerfile="components/a/Dockerfile", context="components/a",
                build_args={}, depends_on=(), test=None)
    return ComponentSpec(**{**base, **kw})


FILES = sorted([
    TrackedFile("components/a/Dockerfile", "100644", "1" * 40),
    TrackedFile("components/a/src/x.py", "100644", "2" * 40),
    TrackedFile("components/ab/Dockerfile", "100644", "3" * 40),
    TrackedFile("libs/common/util.py", "100644", "4" * 40),
    TrackedFile("libs/commonx.py", "100644", "5" * 40),
])


def test_files_under_matches_whole_path_segments():
    chosen = files_under(FILES, ["components/a", "libs/common"])
    assert [f.path for f in chosen] == [
        "components/a/Dockerfile", "components/a/src/x.py", "libs/common/util.py",
    ]


def test_files_under_single_file_and_root():
    assert [f.path for f in files_under(FILES, ["libs/commonx.py"])] == ["libs/commonx.py"]
    assert len(files_under(FILES, ["."])) == len(FILES)


def test_hash_changes_with_each_input():
    files = files_under(FILES, ["components/a"])
    base = input_hash(spec(), files, {})
    changed_blob = [TrackedFile(f.path, f.mode, "9" * 40) if "x.py" in f.path else f for f in files]
    changed_mode = [TrackedFile(f.path, "100755", f.blob) for f in files]
    assert input_hash(spec(), changed_blob, {}) != base
    assert input_hash(spec(), changed_mode, {}) != base
    assert input_hash(spec(), files, {"BASE_IMAGE": "other:1"}) != base
    assert input_hash(spec(dockerfile="components/a/Dockerfile.gpu"), files, {}) != base
    assert input_hash(spec(), files, {}) == base


def test_build_args_precedence():
    s = spec(build_args={"A": "component", "B": "component"})
    settings = BuildSettings(build_args={"A": "global", "C": "global"})
    assert effective_build_args(s, settings, {"B": "cli"}) == {"A": "component", "B": "cli", "C": "global"}


def test_git_blob_id_matches_git():
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_ih_tag_is_a_prefix():
    assert ih_tag("ab" * 32) == "ih-" + ("ab" * 32)[:20]
