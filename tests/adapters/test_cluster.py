"""The `cluster` adapter against the Kubernetes API stub: kubeconfig, in-cluster, failures.

Also checks the stub itself: every object its builders make validates
against the upstream CRDs, and it refuses one that does not.
"""

from __future__ import annotations

import jsonschema
import pytest

from mlops.adapters import cluster
from tests.support import kubestub as ks
from tests.support.services import free_port

HEAD = "3f9c2d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
TOKEN = "tok-9f8e7d6c5b4a"


def objects():
    return (ks.application("mlops-dev", revision=HEAD, dest_namespace="dev",
                           path="environments/dev"),
            ks.inference_service("cancer", "dev", latest=2, previous=1, percent=10))


@pytest.fixture
def stub():
    with ks.KubeStub(token=TOKEN) as server:
        server.put(*objects())
        yield server


@pytest.fixture
def tls_stub(tmp_path):
    with ks.KubeStub(token=TOKEN, tls_dir=tmp_path / "tls") as server:
        server.put(*objects())
        yield server


def environ(tmp_path, **extra):
    """No ~/.kube/config of the machine's user can leak into a test."""
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), **extra}


def one_line_error(call) -> str:
    with pytest.raises(cluster.ClusterError) as info:
        call()
    message = info.value.message
    assert "\n" not in message and message.strip() == message
    return message


def test_kubeconfig_reads_both_kinds(stub, tmp_path):
    config = stub.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
    with cluster.connect(environ(tmp_path, KUBECONFIG=str(config))) as kube:
        app = kube.application("argocd", "mlops-dev")
        isvc = kube.inference_service("dev", "cancer")
        assert kube.host == stub.url
    assert app == objects()[0] and isvc == objects()[1]
    assert [path for path, _ in stub.requests] == [
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/mlops-dev",
        "/apis/serving.kserve.io/v1beta1/namespaces/dev/inferenceservices/cancer"]
    assert {auth for _, auth in stub.requests} == {f"Bearer {TOKEN}"}


def test_default_kubeconfig_in_home_and_path_lists(stub, tmp_path):
    env = environ(tmp_path)
    stub.kubeconfig(tmp_path / "home" / ".kube" / "config", token=TOKEN)
    with cluster.connect(env) as kube:
        assert kube.inference_service("dev", "cancer") is not None
    listed = f"{tmp_path / 'missing.yaml'}:{stub.kubeconfig(tmp_path / 'b.yaml', token=TOKEN)}"
    with cluster.connect(environ(tmp_path / "other", KUBECONFIG=listed)) as kube:
        assert kube.application("argocd", "mlops-dev") is not None


def test_missing_objects_are_none(stub, tmp_path):
    config = stub.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
    with cluster.connect(environ(tmp_path, KUBECONFIG=str(config))) as kube:
        assert kube.application("argocd", "mlops-prod") is None
        assert kube.inference_service("prod", "cancer") is None
        assert kube.inference_service("dev", "cancer") is not None


def test_a_resource_the_server_does_not_serve_is_an_error_not_none(stub, tmp_path):
    config = stub.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
    with cluster.connect(environ(tmp_path, KUBECONFIG=str(config))) as kube:
        message = one_line_error(lambda: kube.get(("argoproj.io", "v1beta9", "applications"),
                                                  "argocd", "mlops-dev"))
    assert message == (f"the Kubernetes API at {stub.url} does not serve "
                       "applications.argoproj.io; is its CRD installed?")


def test_context_selects_and_unknown_context_is_one_line(stub, tmp_path):
    config = stub.kubeconfig(tmp_path / "kubeconfig", token=TOKEN, context="main",
                             extra_contexts=("ci",))
    env = environ(tmp_path, KUBECONFIG=str(config))
    with cluster.connect(env, context="ci") as kube:
        assert kube.inference_service("dev", "cancer") is not None
    message = one_line_error(lambda: cluster.connect(env, context="nope"))
    assert message.startswith("Kubernetes configuration: ") and "nope" in message


def test_in_cluster_with_service_account_over_tls(tls_stub, tmp_path):
    sa_dir = tmp_path / "serviceaccount"
    env = environ(tmp_path, **tls_stub.service_account(sa_dir, TOKEN))
    with cluster.connect(env, service_account_dir=sa_dir) as kube:
        assert kube.host == tls_stub.url and kube.host.startswith("https://")
        assert kube.inference_service("dev", "cancer") == objects()[1]
    assert tls_stub.requests[-1][1] is not None
    assert tls_stub.requests[-1][1].lower() == f"bearer {TOKEN}"


def test_a_kubeconfig_wins_over_in_cluster(stub, tls_stub, tmp_path):
    sa_dir = tmp_path / "serviceaccount"
    config = stub.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
    env = environ(tmp_path, KUBECONFIG=str(config), **tls_stub.service_account(sa_dir, TOKEN))
    with cluster.connect(env, service_account_dir=sa_dir) as kube:
        assert kube.host == stub.url


def test_in_cluster_refuses_a_server_its_ca_did_not_sign(tls_stub, tmp_path):
    sa_dir = tmp_path / "serviceaccount"
    env = environ(tmp_path, **tls_stub.service_account(sa_dir, TOKEN))
    other_ca, _ = ks.self_signed_cert(tmp_path / "other")
    (sa_dir / "ca.crt").write_bytes(other_ca.read_bytes())
    with cluster.connect(env, service_account_dir=sa_dir) as kube:
        message = one_line_error(lambda: kube.inference_service("dev", "cancer"))
    assert message.startswith(f"cannot reach the Kubernetes API at {tls_stub.url}: ")
    assert "certificate verify failed" in message


def test_in_cluster_without_a_token_file(tls_stub, tmp_path):
    env = environ(tmp_path, **tls_stub.service_account(tmp_path / "sa", TOKEN))
    (tmp_path / "sa" / "token").unlink()
    message = one_line_error(lambda: cluster.connect(env, service_account_dir=tmp_path / "sa"))
    assert message == "Kubernetes configuration: Service token file does not exist."


def test_wrong_token_is_a_one_line_error_without_the_token(stub, tmp_path):
    config = stub.kubeconfig(tmp_path / "kubeconfig", token="not-the-token")
    with cluster.connect(environ(tmp_path, KUBECONFIG=str(config))) as kube:
        message = one_line_error(lambda: kube.application("argocd", "mlops-dev"))
    assert message == (f"the Kubernetes API at {stub.url} refused the credentials "
                       "(401 Unauthorized)")
    assert "not-the-token" not in message and TOKEN not in message


def test_server_errors_are_one_line(stub, tmp_path):
    config = stub.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
    stub.fail_with = 503
    with cluster.connect(environ(tmp_path, KUBECONFIG=str(config))) as kube:
        message = one_line_error(lambda: kube.inference_service("dev", "cancer"))
    assert message == f"the Kubernetes API at {stub.url} answered 503: etcdserver: leader changed"


def test_unreachable_api_is_one_line(tmp_path):
    with ks.KubeStub() as gone:
        config = gone.kubeconfig(tmp_path / "kubeconfig", token=TOKEN)
        url = gone.url
    with cluster.connect(environ(tmp_path, KUBECONFIG=str(config))) as kube:
        message = one_line_error(lambda: kube.application("argocd", "mlops-dev"))
    assert message.startswith(f"cannot reach the Kubernetes API at {url}: ")
    assert message.endswith("Connection refused") and TOKEN not in message


def test_userinfo_in_the_server_url_is_redacted(tmp_path):
    port = free_port()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: 'http://admin:hunter2@127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n")
    with cluster.connect(environ(tmp_path, KUBECONFIG=str(config))) as kube:
        message = one_line_error(lambda: kube.application("argocd", "x"))
    assert "hunter2" not in message and "http://***@127.0.0.1" in message


def test_no_configuration_at_all(tmp_path):
    message = one_line_error(lambda: cluster.connect(environ(tmp_path)))
    assert message == ("no Kubernetes configuration: set $KUBECONFIG, create ~/.kube/config, "
                       "or run in a pod with a service account")


# -- the stub's objects ------------------------------------------------------------------

BUILDS = {
    "app synced": lambda: ks.application("a", revision=HEAD, dest_namespace="dev", path="p"),
    "app out of sync": lambda: ks.application("a", revision=HEAD, dest_namespace="dev",
                                              path="p", sync="OutOfSync", health="Degraded",
                                              phase="Failed"),
    "isvc first revision": lambda: ks.inference_service("cancer", "dev"),
    "isvc canary": lambda: ks.inference_service("cancer", "dev", latest=2, previous=1,
                                                percent=10),
    "isvc aborted": lambda: ks.inference_service("cancer", "dev", latest=2, previous=1,
                                                 percent=0),
    "isvc promoted": lambda: ks.inference_service("cancer", "dev", latest=2, previous=1),
    "isvc not ready": lambda: ks.inference_service("cancer", "dev", latest=2, previous=1,
                                                   ready=False),
    "isvc stale": lambda: ks.inference_service("cancer", "dev", stale=True),
}


@pytest.mark.parametrize("build", BUILDS.values(), ids=BUILDS.keys())
def test_every_builder_output_validates_against_the_crds(build, stub):
    obj = build()
    stub.put(obj)  # validates, or raises
    group, version = obj["apiVersion"].split("/")
    meta = obj["metadata"]
    assert stub.lookup(group, version, meta["namespace"], ks.PLURALS[obj["kind"]],
                       meta["name"]) == obj


@pytest.mark.parametrize(("field", "bad"), [
    (("status", "components", "predictor", "traffic", 0, "percent"), "10"),
    (("status", "conditions", 0), {"reason": "no type or status"}),
    (("status", "modelStatus", "transitionStatus"), "Sideways"),
])
def test_the_stub_refuses_an_object_its_crd_does_not_allow(stub, field, bad):
    obj = ks.inference_service("cancer", "dev", latest=2, previous=1, percent=10)
    node = obj
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        stub.put(obj)
    app = ks.application("a", revision=HEAD, dest_namespace="dev", path="p")
    del app["spec"]["project"]
    with pytest.raises(jsonschema.ValidationError):
        stub.later(0.01, app)
