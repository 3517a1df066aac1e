"""`python3 -m model self-test`: what `mlops build` runs in the fresh image before pushing.

Trains on the synthetic data, checks the accuracy, round-trips the model file,
then serves it on a free port and checks predict, health, errors and metrics.
"""

from __future__ import annotations

import json
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

from . import core, server

MIN_ACCURACY = 0.85


class SelfTestError(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SelfTestError(what)


def _request(url: str, body: object | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - http://127.0.0.1
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _check_model(folder: Path) -> core.Model:
    model, metrics = core.train(samples=400, seed=7, epochs=200, lr=0.5)
    check(metrics["accuracy"] >= MIN_ACCURACY, f"accuracy {metrics['accuracy']} < {MIN_ACCURACY}")
    core.save(model, folder / "model.json")
    check(core.load(folder) == model, "the saved model does not load back the same")
    return model


def _check_server(model: core.Model) -> None:
    httpd = server.make_server(model, "model", "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        code, text = _request(f"{base}/v1/models/model:predict",
                              {"instances": [[-2.0] * core.FEATURES, [2.0] * core.FEATURES]})
        check(code == 200 and json.loads(text) == {"predictions": [0, 1]}, f"predict: {text}")
        check(_request(f"{base}/v2/health/ready")[0] == 200, "not ready")
        check(_request(f"{base}/v1/models/model:predict", {"instances": [[1]]})[0] == 400,
              "a malformed instance is not a 400")
        metrics = _request(f"{base}/metrics")[1]
        for line in ('model_requests_total{code="200"} 1', 'model_requests_total{code="400"} 1'):
            check(line in metrics.splitlines(), f"/metrics lacks {line!r}")
    finally:
        httpd.shutdown()
        httpd.server_close()


def run() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _check_server(_check_model(Path(tmp)))
        except SelfTestError as exc:
            print(f"self-test: FAILED: {exc}")
            return 1
    print("self-test: ok")
    return 0
