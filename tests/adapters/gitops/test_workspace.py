import os
import subprocess
import tempfile
import time
from pathlib import Path

from mlops.adapters.gitops import workspace


def test_workspaces_left_by_a_killed_promotion_are_swept_after_an_hour():
    old = Path(tempfile.mkdtemp(prefix=workspace.TMP_PREFIX))
    fresh = Path(tempfile.mkdtemp(prefix=workspace.TMP_PREFIX))
    hours_ago = time.time() - 2 * workspace.STALE_AFTER
    os.utime(old, (hours_ago, hours_ago))
    try:
        workspace._sweep_stale_workspaces()
        assert not old.exists()
        assert fresh.exists()  # may belong to a promotion running right now
    finally:
        fresh.rmdir()


def _remote_with_components(base: Path) -> Path:
    """A bare remote whose main holds two components with sources, and an environment."""
    from tests.conftest import git, write_files

    work, remote = base / "work", base / "remote.git"
    git(base, "init", "-q", "--bare", "-b", "main", str(remote))
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    write_files(work, {
        "mlops.yaml": "registry: r\n", ".mlops/allowed_signers": "alice ssh-ed25519 AAAA\n",
        "pipelines/training.py": "# a pipeline\n", "environments/dev/kustomization.yaml": "{}\n",
        **{f"components/{n}/{f}": f"{n} {f}\n" for n in ("a", "b")
           for f in ("component.yaml", "Dockerfile", "src/main.py", "tests/test_main.py")},
    })
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", "init")
    git(work, "push", "-q", str(remote), "main")
    return remote


def test_a_workspace_checks_out_all_but_component_folders_and_commits_whole_trees(tmp_path):
    from mlops.services import checkout
    from tests.conftest import git

    remote = _remote_with_components(tmp_path)
    with workspace.Workspace(str(remote), "main") as ws:
        files = sorted(str(p.relative_to(ws.root)) for p in ws.root.rglob("*")
                       if p.is_file() and ".git" not in p.parts)
        assert files == [".mlops/allowed_signers", "environments/dev/kustomization.yaml",
                         "mlops.yaml", "pipelines/training.py"]
        assert not (ws.root / "components" / "a").exists()
        assert checkout.component_folders(ws.root) == ["a", "b"]  # from the index
        assert ws.uncommitted() == ""
        (ws.root / "environments" / "dev" / "kustomization.yaml").write_text("images: []\n")
        ws.commit("promote(dev): x")
        ws.push()
    changed = git(remote, "diff", "--name-only", "main~1", "main")
    assert changed == "environments/dev/kustomization.yaml"  # no source looks deleted
    assert git(remote, "show", "main:components/a/src/main.py") == "a src/main.py"


def test_a_full_checkout_still_counts_untracked_component_folders(tmp_path):
    from mlops.services import checkout
    from tests.conftest import git, write_files

    remote = _remote_with_components(tmp_path)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    write_files(clone, {"components/c/component.yaml": "name: c\n", "components/d/x.py": ""})
    (clone / "components" / "b" / "component.yaml").unlink()
    assert checkout.component_folders(clone) == ["a", "c"]  # the work tree, as before


def test_files_exported_from_a_commit_are_read_as_they_are(tmp_path):
    from mlops.services import checkout
    from tests.conftest import write_files

    write_files(tmp_path, {"components/a/component.yaml": "name: a\n", "components/b/x": ""})
    assert checkout.component_folders(tmp_path) == ["a"]  # no .git: not asked of git


def test_the_commit_identity_is_read_in_one_call_with_the_last_value_winning(
        tmp_path, monkeypatch):
    from tests.conftest import git

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    assert workspace.identity(repo) == workspace.FALLBACK_IDENTITY
    git(tmp_path, "config", "--file", str(tmp_path / "global"), "user.email", "g@example.org")
    git(repo, "config", "user.name", "first")
    git(repo, "config", "--add", "user.name", "Ada Q. Lovelace")  # a second value: it wins
    assert workspace.identity(repo) == {"name": "Ada Q. Lovelace", "email": "g@example.org"}
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "env@example.org")
    git(tmp_path, "config", "--file", str(tmp_path / "global"), "--unset", "user.email")
    assert workspace.identity(repo)["email"] == "env@example.org"


def test_files_of_a_commit_id_are_read_from_git_once(tmp_path):
    from tests.conftest import git

    remote = _remote_with_components(tmp_path)
    sha = git(remote, "rev-parse", "main")
    with workspace.Workspace(str(remote), "main") as ws:
        spec = f"{sha}:mlops.yaml"
        assert ws.show_many([spec, f"{sha}:nope"]) == [b"registry: r\n", None]
        long_name = sha + sha[:24]  # 64 hex: in a SHA-1 repository only a ref can be it
        git(ws.root, "branch", long_name)
        assert ws.show_many([f"{long_name}:mlops.yaml"]) == [b"registry: r\n"]
        (ws.root / ".git").rename(ws.root / "git-away")  # git cannot answer any more
        assert ws.show_many([spec, spec]) == [b"registry: r\n"] * 2
        for asked_again in ("main:mlops.yaml",  # a name that can move
                            f"{sha}:nope",  # absent: maybe an object not fetched yet
                            f"{long_name}:mlops.yaml"):  # a branch, though it looks like an id
            try:
                ws.show_many([asked_again])
            except workspace.GitError:
                continue
            raise AssertionError(f"{asked_again} was answered from memory")
        (ws.root / "git-away").rename(ws.root / ".git")


def test_a_workspace_commit_runs_no_automatic_upkeep(tmp_path, monkeypatch):
    """`git commit` starts `git maintenance run --auto` unless told not to; a workspace
    is removed when the command ends, so that would be work thrown away."""
    remote = _remote_with_components(tmp_path)
    ours, plain = tmp_path / "trace-ours", tmp_path / "trace-plain"
    with workspace.Workspace(str(remote), "main") as ws:
        (ws.root / "mlops.yaml").write_text("registry: s\n")
        monkeypatch.setenv("GIT_TRACE", str(ours))
        ws.commit("a change")
        (ws.root / "mlops.yaml").write_text("registry: t\n")
        monkeypatch.setenv("GIT_TRACE", str(plain))
        ws._run("-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "for contrast")
    assert "built-in: git commit" in ours.read_text()
    assert "maintenance" not in ours.read_text()
    assert "maintenance run --auto" in plain.read_text()


def test_reads_use_no_commit_graph_and_keep_the_callers_git_settings(tmp_path, monkeypatch):
    # git trusts a commit-graph file for parents, and the user's clone (whose objects a
    # workspace borrows) could hold a forged one: every read turns it off.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "Given By The Caller")

    def setting(key: str) -> str:
        return subprocess.run(["git", "config", key], cwd=tmp_path, env=workspace._read_as_stored(),
                              capture_output=True, text=True, check=True).stdout.strip()

    assert setting("core.commitGraph") == "false"
    assert setting("user.name") == "Given By The Caller"
