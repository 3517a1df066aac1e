"""docs/argocd-kserve.md, claim by claim, where no other test proves it: real git repos,
`kubectl kustomize`, the CLI, and the API stub (tests/support/kubestub.py, CRD-checked)."""

from __future__ import annotations

import contextlib
import difflib
import re
import shlex
import socket
import subprocess
import textwrap
import threading
import time

import pytest
import yaml

from mlops import argocd
from mlops import release as rel
from mlops.adapters import cluster
from mlops.cli import main
from mlops.config import load_config
from tests.commands.conftest import built, release_of  # noqa: F401 - `built` is a fixture
from tests.commands.test_rollout import approve, canary_config, push_edit, rollout, to_staging
from tests.conftest import REPO_ROOT, git
from tests.support import crds
from tests.support import kubestub as ks
from tests.support.promotion import Playground, repo_files, ssh_key

DOC = (REPO_ROOT / "docs/argocd-kserve.md").read_text()
URL = "https://git.example.com/ml/platform.git"


def block(lang: str, starts: str) -> str:
    """The doc's fenced `lang` block whose first line starts with `starts`."""
    found = [b for b in re.findall(rf"```{lang}\n(.*?)```", DOC, re.S) if b.startswith(starts)]
    assert len(found) == 1, f"one ```{lang} block starting {starts!r}, found {len(found)}"
    return found[0]


# -- section 1: what `mlops init` writes, and the doc's repoURL command -----------------------

def test_init_writes_three_files_whose_placeholder_the_docs_sed_replaces(tmp_path, monkeypatch,
                                                                          capsys):
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "t@example.test")
    monkeypatch.chdir(tmp_path)
    assert main(["init", "ml"]) == 0, capsys.readouterr().err
    folder = tmp_path / "ml" / argocd.ARGOCD_DIR
    assert sorted(p.name for p in folder.iterdir()) == ["applications.yaml",
                                                        "kustomization.yaml", "root.yaml"]
    files = [folder / "applications.yaml", folder / "root.yaml"]
    before = [f.read_text() for f in files]
    placeholder = "https://github.com/example/ml.git"
    assert f"`{placeholder}` in a repository made by `mlops init`" in " ".join(DOC.split())
    assert all(t.count(f"repoURL: {placeholder}") for t in before)

    sed = shlex.split(block("sh", "sed -i").split("\ngit commit")[0].replace("\\\n", " "))
    subprocess.run(sed, cwd=tmp_path / "ml", check=True)  # the doc's own command, as written
    for path, old in zip(files, before, strict=True):
        new = path.read_text()
        changed = [ln for ln in difflib.ndiff(old.splitlines(), new.splitlines())
                   if ln.startswith(("+", "-"))]
        assert changed and all(ln[2:].lstrip().startswith("repoURL: ") for ln in changed)
        for app in (d for d in yaml.safe_load_all(new) if d):
            crds.validate(app)
            assert app["spec"]["source"]["repoURL"] == "https://github.com/acme/ml.git"
            assert app["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mlops"
    root = yaml.safe_load(files[1].read_text())
    assert root["spec"]["syncPolicy"] == {"automated": {"prune": False, "selfHeal": True}}
    assert "finalizers" not in root["metadata"]
    rendered = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True,
                              text=True, check=True).stdout
    names = sorted(d["metadata"]["name"] for d in yaml.safe_load_all(rendered) if d)
    assert names == ["mlops-dev", "mlops-prod", "mlops-staging"]  # root.yaml is not listed


@pytest.mark.parametrize("base", [REPO_ROOT / "environments/base",
                                  REPO_ROOT / "mlops/scaffold/repo/environments/base"])
def test_the_base_already_uses_the_names_kserves_defaulter_would_write(base):
    """KServe names a lone predictor container `kserve-container` (kserve
    pkg/apis/serving/v1beta1/predictor_custom.go, CustomPredictor.Default); any other name
    in git would be rewritten on every sync. Also: Knative mode, minReplicas 1, port 8080."""
    (isvc,) = [d for d in yaml.safe_load_all((base / "inferenceservice.yaml").read_text()) if d]
    crds.validate(isvc)
    predictor = isvc["spec"]["predictor"]
    assert [c["name"] for c in predictor["containers"]] == ["kserve-container"]
    assert predictor["containers"][0]["ports"][0]["containerPort"] == 8080
    assert predictor["minReplicas"] == 1
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"


# -- sections 1 and 3: the YAML the doc shows is what mlops writes ----------------------------

def test_the_docs_sync_policy_is_a_released_applications():
    config = load_config(REPO_ROOT, {})
    (app,) = [a for a in argocd.applications(config, URL, released=["prod"])
              if "automated" in a["spec"]["syncPolicy"]]
    shown = yaml.safe_load(block("yaml", "ignoreDifferences:"))
    assert shown == {k: app["spec"][k] for k in ("ignoreDifferences", "syncPolicy")}
    inserted = yaml.safe_load(textwrap.dedent(block("yaml", "  syncPolicy:\n    automated:")))
    assert inserted == {"syncPolicy": {"automated": argocd.AUTOMATED}}


def test_the_docs_cluster_role_grants_exactly_the_two_gets():
    role = next(d for d in yaml.safe_load_all(block("yaml", "apiVersion: rbac")) if
                d and d["kind"] == "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [group], "resources": [plural], "verbs": ["get"]}
        for group, _, plural in (cluster.APPLICATION, cluster.INFERENCE_SERVICE)]


# -- sections 3, 5 and 7: what `mlops status` asks the cluster, and what it expects ----------

@pytest.fixture
def stub():
    with ks.KubeStub() as server:
        yield server


@pytest.fixture
def setup(project, tmp_path, stub):
    play = Playground(tmp_path, project(repo_files("127.0.0.1:5000/docs")))
    env = {"KUBECONFIG": str(stub.kubeconfig(tmp_path / "kubeconfig")), "HOME": str(tmp_path)}
    return play, env


def push(play, files) -> str:
    play.proj.write(files)
    play.proj.commit("change")
    play.proj.git("push", "-q", "origin", "main")
    return play.remote_head()


def push_record(play, rollout_state) -> str:
    release = rel.Release(source_commit="c0ffee" * 6 + "c0ff", model_uri="pvc://models/c",
                          images={"serve": rel.Image("127.0.0.1:5000/docs/serve",
                                                     "sha256:" + "ab" * 32)})
    return push(play, {"environments/dev/release.yaml": rel.render(
        rel.EnvRecord("dev", release, "build", rollout=rollout_state))})


def dev_app(head: str) -> dict:
    return ks.application("mlops-dev", revision=head, dest_namespace="dev",
                          path="environments/dev")


def test_status_only_gets_the_two_objects_and_ignores_the_sync_policy(setup, stub):
    """The stub answers GET alone (anything else would fail the command), and a frozen
    Application (no `automated:`) that runs the branch head still counts as converged.
    The kubectl that renders the overlay (no `service:` here) asks the cluster nothing,
    even the kubectl on this machine, which asks for /version when it can
    (tests/adapters/test_kustomize.py)."""
    play, env = setup
    app = dev_app(play.remote_head())
    del app["spec"]["syncPolicy"]["automated"]
    stub.put(app, ks.inference_service("cancer", "dev"))
    for command in (["status"], ["rollout", "status"]):
        result = play.proj.run(*command, "--env", "dev", "--json", env=env)
        assert result.code == 0 and result.json["converged"] is True, result.err
    paths = [path for path, _ in stub.requests]
    assert sorted(paths) == sorted(2 * [
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/mlops-dev",
        "/apis/serving.kserve.io/v1beta1/namespaces/dev/inferenceservices/cancer"])
    config = play.remote_show("mlops.yaml").replace("  - name: dev\n",
                                                    "  - name: dev\n    service: cancer\n")
    stub.put(dev_app(push(play, {"mlops.yaml": config + "\n"})))
    stub.requests.clear()
    assert play.proj.run("status", "--env", "dev", env=env).code == 0
    assert [path for path, _ in stub.requests] == [  # the same two GETs, nothing rendered
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/mlops-dev",
        "/apis/serving.kserve.io/v1beta1/namespaces/dev/inferenceservices/cancer"]


def test_without_a_traffic_block_status_wants_ready_and_100_percent(setup, stub):
    """A Standard-mode InferenceService reports no Knative traffic (section 5)."""
    play, env = setup
    isvc = ks.inference_service("cancer", "dev")
    isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Standard"
    isvc["status"]["deploymentMode"] = "Standard"
    del isvc["status"]["components"]["predictor"]["traffic"]

    def status(head):
        stub.put(dev_app(head), isvc)
        result = play.proj.run("status", "--env", "dev", "--json", env=env)
        assert result.code == 0, result.err
        return result.json

    assert status(push_record(play, {"state": "complete"}))["converged"] is True
    canary = status(push_record(play, {"state": "canary", "percent": 10, "step": 1,
                                       "steps": 2, "baseline": "r-0123456789ab"}))
    assert canary["pending"] == [
        "no traffic split is reported (not serverless?), expected 10% on the latest revision"]
    isvc["status"]["conditions"][-1].update(status="False", reason="Failed", message="no pods")
    done = status(push_record(play, {"state": "complete"}))
    assert done["pending"] == ["InferenceService dev/cancer is not Ready (Failed: no pods)"]


def accept_all(sock: socket.socket, held: list) -> None:
    with contextlib.suppress(OSError):  # until the test closes it
        while True:
            held.append(sock.accept()[0])


@pytest.mark.parametrize("accepts, least, said", [(False, 6, "connect timeout=3.0"),
                                                  (True, 20, "read timeout=10.0")])
def test_a_dead_api_server_fails_status_after_the_documented_time(setup, tmp_path, accepts,
                                                                   least, said):
    """A port that takes no connection (its one-slot backlog is full), or never answers."""
    play, env = setup
    sock = socket.create_server(("127.0.0.1", 0), backlog=8 if accepts else 0)
    port, held = sock.getsockname()[1], [sock]
    if accepts:
        threading.Thread(target=accept_all, args=(sock, held), daemon=True).start()
    else:
        held.append(socket.create_connection(("127.0.0.1", port)))
    config = tmp_path / "dead-kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nusers: [{name: u, user: {}}]\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n")
    started = time.monotonic()
    try:
        result = play.proj.run("status", "--env", "dev", env={**env, "KUBECONFIG": str(config)})
    finally:
        took = time.monotonic() - started
        for s in list(held):
            s.close()
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "timed out" in result.err and said in result.err
    assert least <= took < least + 15, took  # + the clone, a dispatching kubectl


def test_context_in_a_pod_without_a_kubeconfig_is_one_line(setup):
    play, env = setup
    result = play.proj.run("status", "--env", "dev", "--context", "ci", env={
        "HOME": env["HOME"], "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": "127.0.0.1"})
    assert (result.code, result.err) == (
        1, "mlops: error: --context ci needs a kubeconfig; none was found\n")


# -- sections 1 and 5 on a real promotion chain (the real engine and registry) ----------------

@pytest.fixture
def canary(project, built, tmp_path):  # noqa: F811 - `built` is the imported fixture
    """dev and staging promoted, prod a canary environment with no release yet; the repo has
    environments/argocd/ as `mlops init` writes it."""
    keys = {"alice": ssh_key(tmp_path, "alice")}
    play = Playground(tmp_path, project({
        **repo_files(built[0]), "mlops.yaml": canary_config(built[0]),
        ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n"}))
    config = load_config(play.clone, {})
    play.proj.write({argocd.APPLICATIONS_FILE: argocd.render_applications(config, URL),
                     argocd.ROOT_FILE: argocd.render_root(config, URL),
                     f"{argocd.ARGOCD_DIR}/kustomization.yaml": argocd.render_kustomization()})
    play.proj.commit("argocd")
    play.proj.git("push", "-q", "origin", "main")
    return play, keys, config


def test_a_first_rollout_start_turns_on_sync_in_its_own_commit_and_nothing_later_does(
        canary, built):  # noqa: F811
    play, keys, config = canary
    to_staging(play, built, "pvc://models/cancer-v1")
    before = play.remote_show(argocd.APPLICATIONS_FILE) + "\n"
    assert argocd.automated_sync(before) == {
        "mlops-dev": True, "mlops-staging": True, "mlops-prod": False}
    approve(play, keys, release=release_of(play, "staging")["id"])
    first = rollout(play, "start", "--json")
    assert first.code == 0 and first.json["status"] == "complete", first.err
    changed = git(play.remote, "show", "--name-only", "--format=", "main").splitlines()
    assert {"environments/prod/release.yaml", "environments/prod/kustomization.yaml",
            argocd.APPLICATIONS_FILE} <= set(changed)
    assert git(play.remote, "log", "--format=%H", "--diff-filter=A", "main", "--",
               "environments/prod/release.yaml") == play.remote_head()
    diff = git(play.remote, "show", "--format=", "-U0", "main", "--", argocd.APPLICATIONS_FILE)
    added = [ln[1:] for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert added == block("yaml", "  syncPolicy:\n    automated:").splitlines()[1:]
    after = play.remote_show(argocd.APPLICATIONS_FILE) + "\n"
    assert after == argocd.render_applications(config, URL, released=["dev", "staging", "prod"])

    to_staging(play, built, "pvc://models/cancer-v2")
    started = rollout(play, "start", "--json")
    assert started.code == 0 and started.json["status"] == "started", started.err
    aborted = rollout(play, "abort", "--expect", started.json["release"], "--json")
    assert aborted.code == 0, aborted.err
    log = git(play.remote, "log", "--format=%s", "main", "--", argocd.APPLICATIONS_FILE)
    assert [s.split(":")[0] for s in log.splitlines()] == [
        "canary(prod)", "promote(staging)", "promote(dev)", "argocd"]


def test_modes_are_exact_for_a_canary_and_free_elsewhere(canary, built):  # noqa: F811
    """dev and staging (no `canary:`) take a lower-case `knative`; prod's rollout refuses it,
    and an InferenceService without the annotation, in one line and without a commit. The
    repository keeps its Applications elsewhere: promotions write no applications.yaml."""
    play, keys, _ = canary
    play.proj.git("rm", "-rq", argocd.ARGOCD_DIR)  # Applications kept elsewhere
    play.proj.commit("no environments/argocd")
    push_edit(play, "environments/base/inferenceservice.yaml",
              lambda t: t.replace("deploymentMode: Knative", "deploymentMode: knative"))
    to_staging(play, built, "pvc://models/cancer-v1")
    approve(play, keys, release=release_of(play, "staging")["id"])
    for expected in ("is annotated serving.kserve.io/deploymentMode: knative; KServe ignores",
                     "has no serving.kserve.io/deploymentMode annotation"):
        head = play.remote_head()
        result = rollout(play, "start")
        assert result.code == 1 and result.err.count("\n") == 1, result.err
        assert expected in result.err and play.remote_head() == head
        push_edit(play, "environments/base/inferenceservice.yaml", lambda t: re.sub(
            r"\n +serving\.kserve\.io/deploymentMode: \w+", "", t))
    assert git(play.remote, "ls-tree", "main", argocd.ARGOCD_DIR) == ""  # none written
