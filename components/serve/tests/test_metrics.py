import asyncio

import pytest

from serve.metrics import REQUESTS, InferenceMetricsMiddleware, match_route


@pytest.mark.parametrize("path,expected", [
    ("/v1/models/cancer:predict", ("v1", "cancer")),
    ("/v2/models/cancer/infer", ("v2", "cancer")),
    ("/v2/models/cancer/versions/3/infer", ("v2", "cancer")),
    ("/v1/models/cancer", None),
    ("/v2/models/cancer/ready", None),
    ("/metrics", None),
])
def test_match_route(path, expected):
    assert match_route(path) == expected


def _count(model, protocol, code):
    return REQUESTS.labels(model, protocol, code)._value.get()


def _call(app, path):
    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    scope = {"type": "http", "path": path}
    asyncio.run(InferenceMetricsMiddleware(app, ["m"])(scope, receive, send))


def test_exception_counts_as_500_and_propagates():
    async def failing(scope, receive, send):
        raise RuntimeError("boom")

    before = _count("m", "v2", "500")
    with pytest.raises(RuntimeError):
        _call(failing, "/v2/models/m/infer")
    assert _count("m", "v2", "500") == before + 1


def test_records_status_and_maps_unknown_models():
    async def teapot(scope, receive, send):
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    before = _count("unknown", "v1", "418")
    _call(teapot, "/v1/models/someone-else:predict")
    assert _count("unknown", "v1", "418") == before + 1
