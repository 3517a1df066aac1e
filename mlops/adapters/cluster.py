"""The Kubernetes API, read only: Argo CD Applications and KServe InferenceServices.

The only module that imports the `kubernetes` package. It finds credentials
the way kubectl does (a kubeconfig first, then the pod's service account)
and turns every failure into a one-line `ClusterError` that never carries a
token. Requests have short timeouts: a status poll must not hang on a dead
API server.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader
from kubernetes.config.kube_config import load_kube_config

from mlops.adapters import safeyaml, transport
from mlops.errors import MlopsError
from mlops.redact import redact

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT = (3.0, 10.0)  # (connect, read) seconds per request
# urllib3 prefixes errors with the connection's repr: "<HTTPSConnection(...) at 0x..>: "
_CONNECTION_REPR = re.compile(r"^(<[^<>]*>|\w+\([^()]*\)):\s*")
RETRIES = 1  # urllib3 retries a refused connection; --wait polls again anyway

# (group, version, plural) as the CRDs define them
APPLICATION = ("argoproj.io", "v1alpha1", "applications")
INFERENCE_SERVICE = ("serving.kserve.io", "v1beta1", "inferenceservices")


class ClusterError(MlopsError):
    """The Kubernetes API could not be configured or reached, or refused a request."""


def configure(
    environ: Mapping[str, str],
    context: str | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> client.Configuration:
    """Client settings from $KUBECONFIG (or ~/.kube/config), else the pod's service account."""
    configuration = client.Configuration()
    kubeconfig = _kubeconfig(environ)
    try:
        if kubeconfig is not None:
            load_kube_config(config_file=kubeconfig, context=context,
                             client_configuration=configuration, persist_config=False)
        elif environ.get("KUBERNETES_SERVICE_HOST"):
            if context:
                raise ClusterError(f"--context {context} needs a kubeconfig; none was found")
            _in_cluster(configuration, environ, service_account_dir)
        else:
            raise ClusterError(
                "no Kubernetes configuration: set $KUBECONFIG, create ~/.kube/config, "
                "or run in a pod with a service account")
    except ConfigException as exc:
        raise ClusterError(f"Kubernetes configuration: {_first_line(str(exc))}") from None
    except (safeyaml.YAMLError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # The kubernetes package trusts the file's shape; a malformed one fails anywhere.
        raise ClusterError(f"Kubernetes configuration: {kubeconfig} is not a valid kubeconfig "
                           f"({type(exc).__name__}: {_first_line(str(exc))})") from None
    configuration.retries = RETRIES
    return configuration


def _kubeconfig(environ: Mapping[str, str]) -> str | None:
    """$KUBECONFIG (a path list, as kubectl reads it) or ~/.kube/config, if a file exists."""
    home = environ.get("HOME") or str(Path.home())
    listed = environ.get("KUBECONFIG") or str(Path(home) / ".kube" / "config")
    paths = [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    return listed if any(p.is_file() for p in paths) else None


def _in_cluster(configuration: client.Configuration, environ: Mapping[str, str],
                service_account_dir: Path) -> None:
    loader = InClusterConfigLoader(
        token_filename=str(service_account_dir / "token"),
        cert_filename=str(service_account_dir / "ca.crt"),
        environ=environ,
    )
    loader.load_and_set(configuration)


def connect(environ: Mapping[str, str], context: str | None = None,
            service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> Cluster:
    return Cluster(configure(environ, context, service_account_dir))


class Cluster:
    """One API server. `with connect(os.environ) as kube: kube.application(ns, name)`."""

    def __init__(self, configuration: client.Configuration) -> None:
        self.host = redact(str(configuration.host))  # printed in messages and --json
        self._api = client.ApiClient(configuration)
        self._custom = client.CustomObjectsApi(self._api)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    def application(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(APPLICATION, namespace, name)

    def inference_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(INFERENCE_SERVICE, namespace, name)

    def get(self, resource: tuple[str, str, str], namespace: str,
            name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        group, version, plural = resource
        try:
            found = self._custom.get_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if _object_missing(exc, name):
                return None
            raise ClusterError(self._refusal(exc, f"{plural}.{group}")) from None
        except transport.Urllib3Error as exc:
            raise ClusterError(f"cannot reach the Kubernetes API at {self.host}: "
                               f"{_reason(exc)}") from None
        return dict(found)

    def _refusal(self, exc: ApiException, resource: str) -> str:
        where = self.host
        if not exc.status:  # the client wraps TLS failures as status 0
            return f"cannot reach the Kubernetes API at {where}: {_first_line(str(exc.reason))}"
        if exc.status == 401:
            return f"the Kubernetes API at {where} refused the credentials (401 Unauthorized)"
        if exc.status == 404:
            return f"the Kubernetes API at {where} does not serve {resource}; is its CRD installed?"
        detail = _status_message(exc.body) or str(exc.reason or "")
        return f"the Kubernetes API at {where} answered {exc.status}: {detail}"


def _object_missing(exc: ApiException, name: str) -> bool:
    """A 404 Status about this object, not a path the server does not serve at all."""
    if exc.status != 404:
        return False
    body = _status_body(exc.body)
    return body.get("reason") == "NotFound" and (body.get("details") or {}).get("name") == name


def _status_body(body: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _status_message(body: Any) -> str:
    return _first_line(str(_status_body(body).get("message") or ""))


def _reason(exc: transport.Urllib3Error) -> str:
    """'Connection refused', not urllib3's 'HTTPSConnectionPool(...): Max retries ... (<...>)'."""
    inner = getattr(exc, "reason", None) or exc
    text = _CONNECTION_REPR.sub("", str(inner))
    timed_out = transport.urllib3_timed_out(inner)
    return f"timed out ({_first_line(text)})" if timed_out else _first_line(text)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return redact(lines[0])[:300] if lines else ""
