"""The OpenAPI schema documents every status the server answers, each error with OpenAI's error body; requests
generated from the schema (schemathesis, where installed) get documented statuses and never a 5xx."""

from __future__ import annotations

import json

import pytest

from vlit.serving.schema import ErrorResponse

MODEL = "debug-vlm"
HELLO = [{"role": "user", "content": "Hello"}]
ERROR_REF = "#/components/schemas/ErrorResponse"


def _statuses(spec: dict, path: str, method: str) -> set[int]:
    return {int(s) for s in spec["paths"][path][method]["responses"]}


def test_every_route_documents_its_statuses_with_the_error_body(api_server):
    spec = api_server[1].openapi()
    expected = {("/v1/chat/completions", "post"): {200, 400, 401, 404, 413, 422, 500, 503},
                ("/v1/models", "get"): {200, 401, 500},
                ("/v1/models/{model_id}", "get"): {200, 401, 404, 422, 500},
                ("/health", "get"): {200, 500, 503}}
    for (path, method), statuses in expected.items():
        assert _statuses(spec, path, method) == statuses, path
        responses = spec["paths"][path][method]["responses"]
        for status in statuses - {200, 503} if path == "/health" else statuses - {200}:
            schema = responses[str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (path, status)
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert set(chat) == {"application/json", "text/event-stream"}
    assert spec["components"]["schemas"]["ErrorResponse"]["required"] == ["error"]


@pytest.mark.parametrize(("status", "request_kw"), [
    (400, {"json": {"model": MODEL, "messages": HELLO, "n": 2}}),
    (401, {"json": {"model": MODEL, "messages": HELLO}, "headers": {"Authorization": "Bearer wrong"}}),
    (404, {"json": {"model": "gpt-4o", "messages": HELLO}}),
    (413, {"content": json.dumps({"model": MODEL, "messages": HELLO, "pad": "x" * (3 << 20)}).encode(),
           "headers": {"content-type": "application/json"}}),
    (400, {"json": {"model": MODEL, "messages": []}}),
])
def test_answered_errors_match_the_documented_body(api_server, api_http, status, request_kw):
    response = api_http.post("/v1/chat/completions", **request_kw)
    assert response.status_code == status
    assert status in _statuses(api_server[1].openapi(), "/v1/chat/completions", "post")
    ErrorResponse.model_validate(response.json())


def test_generated_requests_get_documented_answers_and_never_a_server_error(api_server, api_http):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    url, app = api_server
    spec = app.openapi()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [("/v1/chat/completions", "POST"), ("/v1/models/{model_id}", "GET")]
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    cases = st.one_of([schema[path][method].as_strategy(mode) for path, method in operations for mode in modes])
    auth = {"Authorization": api_http.headers["Authorization"]}

    @settings(max_examples=50, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def answer(case) -> None:
        if isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = MODEL  # the served model, so that valid bodies reach the model too
        response = case.call(base_url=url, headers=auth, timeout=60)
        documented = _statuses(spec, case.operation.path, case.method.lower())
        assert response.status_code < 500, (case.body, response.text)
        assert response.status_code in documented, (case.body, response.status_code, response.text)

    answer()
