"""Start the real server (``python3 -m serve``) on free loopback ports and talk HTTP to it."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

SRC = Path(__file__).resolve().parents[1] / "src"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_ready(process, url, deadline=60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            if _request(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    port = _free_port()
    log = (tmp_path_factory.mktemp("log") / "server.log").open("w+")
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    process = subprocess.Popen(
        [sys.executable, "-m", "serve", "--model_name", "cancer", "--model_dir", str(model_dir),
         "--http_port", str(port), "--grpc_port", str(_free_port())],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, f"{base}/v1/models/cancer")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.seek(0)
        print(log.read())


def _samples(base):
    status, text = _request(f"{base}/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_v1_predict(server, dataset):
    x, _ = dataset
    status, body = _request(f"{server}/v1/models/cancer:predict", {"instances": x[:3].tolist()})

    assert status == 200
    assert set(json.loads(body)["predictions"]) <= {0, 1}
    assert len(json.loads(body)["predictions"]) == 3


def test_v2_infer(server, dataset):
    x, _ = dataset
    request = {"inputs": [{"name": "input-0", "shape": [2, 30], "datatype": "FP32",
                           "data": x[:2].flatten().tolist()}]}

    status, body = _request(f"{server}/v2/models/cancer/infer", request)

    assert status == 200
    output = json.loads(body)["outputs"][0]
    assert output["shape"] == [2] and output["datatype"] == "INT64"
    assert set(output["data"]) <= {0, 1}


def test_bad_input_is_400(server):
    status, body = _request(f"{server}/v1/models/cancer:predict", {"instances": [[1.0]]})

    assert status == 400
    assert "[N, 30]" in body


def test_metrics_count_requests_by_status(server, dataset):
    x, _ = dataset
    before = _samples(server)
    _request(f"{server}/v1/models/cancer:predict", {"instances": x[:1].tolist()})
    _request(f"{server}/v1/models/cancer:predict", {"instances": [[1.0]]})
    _request(f"{server}/v1/models/nosuch:predict", {"instances": x[:1].tolist()})

    after = _samples(server)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    requests = "serve_inference_requests_total"
    assert delta(requests, model_name="cancer", protocol="v1", code="200") == 1
    assert delta(requests, model_name="cancer", protocol="v1", code="400") == 1
    assert delta(requests, model_name="unknown", protocol="v1", code="404") == 1
    assert delta("serve_inference_request_duration_seconds_count",
                 model_name="cancer", protocol="v1") == 2
    # KServe times predict() whether or not it raises: the 400 is in there too.
    assert delta("request_predict_seconds_count", model_name="cancer") == 2
