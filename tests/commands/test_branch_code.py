"""Pipeline code from the branch runs during a promotion (`compile`), before the approval
check: what it writes into the workspace's clone must not make a forged approval count."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops.adapters.gitops.workspace import Workspace
from mlops.errors import GitError
from tests.commands import test_compile
from tests.commands.conftest import to_staging
from tests.conftest import git, write_files
from tests.support.promotion import Playground, push_approval, repo_files, ssh_key

ALICE = "alice@example.com"
SAYS_ALICE = f"echo 'Good \"git\" signature for {ALICE} with ED25519 key SHA256:x'"
FAKE_KEYGEN = ("#!/bin/sh\n"  # find-principals names alice; verify says it is hers
               f"case \"$2\" in find-principals) echo {ALICE};; *) {SAYS_ALICE};; esac\n")
FAKE_GPG = ("#!/bin/sh\ncat >/dev/null\necho '[GNUPG:] NEWSIG'\n"  # "good", in ssh-keygen's words
            "echo '[GNUPG:] GOODSIG 0123456789ABCDEF alice'\n"
            "echo '[GNUPG:] VALIDSIG 0123456789ABCDEF 2024-01-01 0 4 0 1 10 00 0123'\n"
            f"echo '[GNUPG:] TRUST_ULTIMATE 0 pgp'\n{SAYS_ALICE} >&2\n")
PGP_SIG = ("gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n"
           " -----END PGP SIGNATURE-----\n")


def _remote(base: Path, signing_key: Path) -> tuple[Path, str]:
    """A bare remote whose head commit is signed with `signing_key`; (remote, its id)."""
    work, remote = base / "work", base / "remote.git"
    git(base, "init", "-q", "--bare", "-b", "main", str(remote))
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    write_files(work, {"mlops.yaml": "registry: r\n"})
    git(work, "add", "-A")
    git(work, "-c", "user.name=m", "-c", "user.email=m@x", "-c", "gpg.format=ssh",
        "-c", f"user.signingkey={signing_key}", "commit", "-q", "-S", "-m", "approve")
    git(work, "push", "-q", str(remote), "main")
    return remote, git(work, "rev-parse", "HEAD").strip()


def _plant(ws: Workspace, name: str, script: str, section: str, key: str) -> None:
    """What branch code can do in the clone: a program, and git config that runs it."""
    fake = ws.root / ".git" / name
    fake.write_text(script)
    fake.chmod(0o755)
    with open(ws.root / ".git" / "config", "a") as config:
        config.write(f"[{section}]\n\t{key} = {fake}\n")


def _old_check(ws: Workspace, sha: str, signers: Path) -> subprocess.CompletedProcess:
    """verify-commit as it ran before: only the signers file given, the rest from config."""
    return subprocess.run(["git", "-c", f"gpg.ssh.allowedSignersFile={signers}",
                           "verify-commit", sha], cwd=ws.root, capture_output=True, text=True)


def test_a_rewritten_gpg_ssh_program_does_not_verify_an_unlisted_key(tmp_path):
    alice, mallory = ssh_key(tmp_path, "alice"), ssh_key(tmp_path, "mallory")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"{ALICE} {alice[1]}\n")
    remote, sha = _remote(tmp_path, mallory[0])
    with Workspace(str(remote), "main") as ws:
        assert ws.verify_commit(sha, signers)[0] is None
        _plant(ws, "ssh-keygen", FAKE_KEYGEN, 'gpg "ssh"', "program")
        assert f"signature for {ALICE}" in _old_check(ws, sha, signers).stderr  # obeyed
        principal, detail = ws.verify_commit(sha, signers)
    assert principal is None and "No principal matched" in detail


def test_an_openpgp_signature_is_not_verified_by_a_planted_gpg(tmp_path):
    alice = ssh_key(tmp_path, "alice")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"{ALICE} {alice[1]}\n")
    remote, head = _remote(tmp_path, alice[0])
    with Workspace(str(remote), "main") as ws:
        raw = git(ws.root, "cat-file", "commit", head)
        headers, _, message = raw.partition("\n\n")
        kept = [line for line in headers.split("\n")
                if not line.startswith(("gpgsig", " "))]  # alice's own signature: away
        forged = "\n".join(kept) + "\n" + PGP_SIG + "\n" + message
        sha = subprocess.run(["git", "hash-object", "-w", "-t", "commit", "--stdin"],
                             cwd=ws.root, input=forged, capture_output=True, text=True,
                             check=True).stdout.strip()
        _plant(ws, "gpg", FAKE_GPG, "gpg", "program")
        old = _old_check(ws, sha, signers)
        assert old.returncode == 0 and f"signature for {ALICE}" in old.stderr  # obeyed
        assert ws.verify_commit(sha, signers)[0] is None


def approve(play, key: Path, principal: str) -> None:
    """An approval a pusher makes with git: `mlops approve` would refuse these keys."""
    push_approval(play, "prod", "staging", principal, key)


PAYLOAD = r'''
# --- appended by someone who can push to the branch ---
import json as _j, sys as _s, pathlib as _p, tempfile as _t
_req = _j.loads(_p.Path(_s.argv[1]).read_text())
if _req.get("env") == "prod":  # every workspace clone it can find, wherever it runs
    for _git in _p.Path(_t.gettempdir()).glob("mlops-workspace-*/repo/.git"):
        _fake = _git / "ssh-keygen"
        _fake.write_text(FAKE)
        _fake.chmod(0o755)
        with open(_git / "config", "a") as _f:
            _f.write(f'[gpg "ssh"]\n\tprogram = {_fake}\n')
'''


@pytest.mark.usefixtures("docker_engine")
def test_pipeline_code_cannot_make_an_unlisted_keys_approval_count(project, built, tmp_path):
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "mallory")}
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"{ALICE} {keys['alice'][1]}\n"}
    files["pipelines/training.py"] = (files["pipelines/training.py"].decode()
                                      + f"FAKE = {FAKE_KEYGEN!r}\n" + PAYLOAD)
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    approve(play, keys["mallory"][0], ALICE)  # mallory's key, alice's name
    head = play.remote_head()
    result = play.proj.run("promote", "--to", "prod", "--from", "staging")
    assert result.code == 4 and "No principal matched" in result.err, result.err
    assert play.remote_head() == head


REPLACE_SIGNED_COMMITS = r'''
# --- appended by someone who can push: every commit alice signed reads as her approval ---
import json as _j, sys as _s, pathlib as _p, tempfile as _t, subprocess as _sp
_req = _j.loads(_p.Path(_s.argv[1]).read_text())
if _req.get("env") == "prod":
    from mlops import trailers as _tr
    from mlops.services.envdir import EnvDir as _E
    for _root in [_p.Path(_req["path"]).parents[1]]:  # the clone being compiled in
        def _g(*a, i=None):
            return _sp.run(["git", *a], cwd=_root, input=i, capture_output=True, text=True,
                           check=True).stdout.strip()
        _rel = _E(_root, "staging").read_record().release
        _msg = _tr.approval_message("prod", _rel.id, "alice@example.com", _rel.digest)
        for _sha in _g("rev-list", "HEAD").split():
            if "\ngpgsig " in "\n" + _g("cat-file", "commit", _sha):
                _par = _g("rev-parse", _sha + "^")
                _tree = _g("rev-parse", _par + "^{tree}")
                _new = _g("hash-object", "-w", "-t", "commit", "--stdin",
                          i=f"tree {_tree}\nparent {_par}\nauthor a <a@x> 1 +0000\n"
                            f"committer a <a@x> 1 +0000\n\n{_msg}")
                _g("update-ref", "refs/replace/" + _sha, _new)
'''
CUT_HISTORY = r'''
# --- appended by someone who can push: history starts at their own unsigned take-over ---
import json as _j, sys as _s, pathlib as _p, tempfile as _t, subprocess as _sp
_req = _j.loads(_p.Path(_s.argv[1]).read_text())
if _req.get("env") == "prod":
    for _root in [_p.Path(_req["path"]).parents[1]]:  # the clone being compiled in
        _out = _sp.run(["git", "log", "--format=%H", "--grep=take over", "HEAD"], cwd=_root,
                       capture_output=True, text=True, check=True).stdout.split()
        if _out:
            (_root / ".git" / "shallow").write_text(_out[0] + "\n")
'''


@pytest.mark.usefixtures("docker_engine")
def test_pipeline_code_cannot_make_a_signed_commit_read_as_an_approval(project, built,
                                                                      tmp_path):
    """Replace refs planted during compile: any commit alice ever signed would read as her
    approval of this release (services/approvals.py reads approvals before compiling)."""
    alice = ssh_key(tmp_path, "alice")
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"{ALICE} {alice[1]}\n"}
    files["pipelines/training.py"] = (files["pipelines/training.py"].decode()
                                      + REPLACE_SIGNED_COMMITS)
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    play.pull()
    (play.clone / "NOTES.md").write_text("release notes\n")  # alice signs all her commits
    play.proj.git("add", "-A")
    play.proj.git("-c", f"user.email={ALICE}", "-c", "gpg.format=ssh",
                  "-c", f"user.signingkey={alice[0]}", "commit", "-q", "-S", "-m", "docs")
    play.proj.git("push", "-q", "origin", "main")
    head = play.remote_head()
    result = play.proj.run("promote", "--to", "prod", "--from", "staging")
    assert result.code == 4 and "needs a release manager's signed approval" in result.err, \
        result.err
    assert play.remote_head() == head


@pytest.mark.usefixtures("docker_engine")
def test_pipeline_code_cannot_cut_history_at_an_unsigned_trust_change(project, built,
                                                                      tmp_path):
    """A .git/shallow written during compile would make the pusher's unsigned take-over the
    first commit, trusted on first use (the trust root is settled before compiling)."""
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "mallory")}
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"{ALICE} {keys['alice'][1]}\n"}
    files["pipelines/training.py"] = files["pipelines/training.py"].decode() + CUT_HISTORY
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    play.pull()
    mallory = "mallory@example.com"
    (play.clone / ".mlops/allowed_signers").write_text(f"{mallory} {keys['mallory'][1]}\n")
    config = play.clone / "mlops.yaml"
    config.write_text(config.read_text().replace(ALICE, mallory))
    play.proj.git("add", "-A")
    play.proj.git("commit", "-q", "-m", "take over")
    play.proj.git("push", "-q", "origin", "main")
    approve(play, keys["mallory"][0], mallory)
    head = play.remote_head()
    result = play.proj.run("promote", "--to", "prod", "--from", "staging")
    assert result.code == 4 and "not signed by a trusted key" in result.err, result.err
    assert play.remote_head() == head


def test_a_workspace_reads_commits_as_stored_and_refuses_a_shallow_file(tmp_path):
    alice = ssh_key(tmp_path, "alice")
    remote, sha = _remote(tmp_path, alice[0])
    with Workspace(str(remote), "main") as ws:
        tree = git(ws.root, "rev-parse", f"{sha}^{{tree}}")
        body = f"tree {tree}\nauthor a <a@x> 1 +0000\ncommitter a <a@x> 1 +0000\n\nforged\n"
        forged = subprocess.run(["git", "hash-object", "-w", "-t", "commit", "--stdin"],
                                cwd=ws.root, input=body, capture_output=True, text=True,
                                check=True).stdout.strip()
        git(ws.root, "update-ref", f"refs/replace/{sha}", forged)
        assert git(ws.root, "log", "-1", "--format=%s", sha) == "forged"  # git obeys it
        assert ws.log()[0].subject == "approve"
        assert ws.raw_commit(sha)[2] == "approve\n"
        (ws.root / ".git" / "shallow").write_text(sha + "\n")
        with pytest.raises(GitError, match=r"\.git/shallow appeared"):
            ws.log()
        with pytest.raises(GitError, match=r"\.git/shallow appeared"):
            ws.show_many([f"{sha}:mlops.yaml"])


REWRITE_ROOT = r'''
# --- appended by someone who can push to the branch ---
import json as _j, sys as _s, pathlib as _p
if _j.loads(_p.Path(_s.argv[1]).read_text()).get("env") == "prod":
    _p.Path(ROOT).write_text(TRUSTED)
'''


@pytest.mark.usefixtures("docker_engine")
def test_a_pinned_root_is_read_before_pipeline_code_runs(project, built, tmp_path,
                                                         monkeypatch):
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "mallory")}
    root = tmp_path / "trust-root.yaml"
    pinned = "allowed_signers: |\n  {} {}\nrelease_managers: [{}]\n"
    root.write_text(pinned.format(ALICE, keys["alice"][1], ALICE))
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"{ALICE} {keys['alice'][1]}\n"}
    trusted = pinned.format("mallory@example.com", keys["mallory"][1], "mallory@example.com")
    files["pipelines/training.py"] = (files["pipelines/training.py"].decode()
                                      + f"ROOT, TRUSTED = {str(root)!r}, {trusted!r}\n"
                                      + REWRITE_ROOT)
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    approve(play, keys["mallory"][0], "mallory@example.com")
    monkeypatch.setenv("MLOPS_TRUST_ROOT", str(root))
    result = play.proj.run("promote", "--to", "prod", "--from", "staging")
    assert "mallory" in root.read_text()  # the pipeline did rewrite the pinned file
    assert result.code == 4, result.err


SNOOP = r'''
# --- appended: what a pipeline sees while it is compiled ---
import json as _j, os as _o, pathlib as _p
_p.Path(OUT).write_text(_j.dumps({"env": dict(_o.environ), "cwd": _o.getcwd()}))
'''
SECRETS = {"MLOPS_TRUST_ROOT": "/etc/mlops/root.yaml", "MLOPS_PROMETHEUS_TOKEN": "t0k",
           "MLFLOW_TRACKING_TOKEN": "t1k", "MLFLOW_TRACKING_PASSWORD": "pw",
           "GIT_ASKPASS": "/bin/echo", "GIT_CONFIG_PARAMETERS": "'a.b'='c'",
           "DOCKER_CONFIG": "/x", "REGISTRY_PASSWORD": "pw2", "GITHUB_TOKEN": "t2k"}


def test_the_compile_child_sees_no_secrets_and_runs_outside_the_clone(
        project, tmp_path, monkeypatch):
    proj = project({"mlops.yaml": test_compile.mlops_yaml("127.0.0.1:5000/mlops"),
                    **test_compile.repo_files("pipelines", "components", "environments")})
    build = tmp_path / "build.json"
    build.write_text(json.dumps(test_compile.build_record()))
    out = tmp_path / "seen.json"
    source = (proj.path / "pipelines/training.py").read_text()
    proj.write({"pipelines/training.py": f"{source}OUT = {str(out)!r}\n{SNOOP}"})
    proj.commit("snoop")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    result = proj.run("compile", "training", "--env", "dev", "--build", str(build))
    assert result.code == 0, result.err
    seen = json.loads(out.read_text())
    assert not set(SECRETS) & set(seen["env"]), seen["env"]
    assert {"PATH", "HOME"} <= set(seen["env"])
    assert not Path(seen["cwd"]).resolve().is_relative_to(proj.path.resolve())
