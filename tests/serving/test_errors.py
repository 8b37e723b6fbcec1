"""Bad requests: each gets the right status and OpenAI's error shape, and the server keeps answering."""

from __future__ import annotations

import base64
import json

import numpy as np
import openai
import pytest
from PIL import Image

from vlit.serving.settings import ServerSettings

MODEL = "debug-vlm"
HELLO = [{"role": "user", "content": "Hello"}]


def _shape(body: dict, status: int, param: str | None = None, code: str | None = None) -> str:
    """Assert OpenAI's error shape; returns the message."""
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    assert isinstance(error["message"], str) and error["message"] and "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error["message"]


@pytest.fixture(autouse=True)
def still_serving(api_client):
    """After every bad request the server must still answer a good one."""
    yield
    out = api_client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
    assert out.choices[0].message.content is not None


def _post(api_http, **body) -> tuple[int, dict]:
    response = api_http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO, **body})
    return response.status_code, response.json()


def _image(api_http, url: str, **body) -> tuple[int, dict]:
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                           {"type": "text", "text": "What is it?"}]}
    return _post(api_http, messages=[message], **body)


IMAGE_PARAM = "messages[0].content[0].image_url"


@pytest.mark.parametrize(("url", "status", "code", "words"), [
    ("data:image/png;base64,@@not base64@@", 400, "invalid_image_url", "not valid base64"),
    ("data:image/png,rawbytes", 400, "invalid_image_url", "base64"),
    ("data:text/plain;base64,aGVsbG8=", 400, "invalid_image_url", "not an image media type"),
    ("data:image/png;base64," + base64.b64encode(b"hello, not a png").decode(), 400, "invalid_image",
     "not an image"),
    ("data:image/png;base64,", 400, "invalid_image", "empty"),
    ("https://example.com/cat.png", 400, "image_url_refused", "--allow-image-host"),
    ("http://169.254.169.254/latest/meta-data", 400, "image_url_refused", "refused"),
    ("file:///etc/passwd", 400, "invalid_image_url", "data URI"),
])
def test_bad_image_urls(api_http, url, status, code, words):
    got, body = _image(api_http, url)
    assert got == status
    assert words in _shape(body, status, IMAGE_PARAM, code)


def test_allowed_host_limits(api_http, image_host):
    got, body = _image(api_http, f"{image_host}/big.bin")
    assert got == 413 and "limit of 524288 bytes" in _shape(body, 413, IMAGE_PARAM, "image_too_large")
    got, body = _image(api_http, f"{image_host}/missing.png")
    assert got == 400 and "HTTP 404" in _shape(body, 400, IMAGE_PARAM, "image_fetch_failed")


def test_oversized_image_names_the_pixel_limit(api_client, data_uri, image_message):
    with pytest.raises(openai.APIStatusError) as info:
        api_client.chat.completions.create(
            model=MODEL, messages=[image_message("What?", data_uri(Image.new("RGB", (200, 100))))])
    assert info.value.status_code == 413
    message = _shape(info.value.response.json(), 413, IMAGE_PARAM, "image_too_large")
    assert "200x100 = 20000 pixels is over the limit of 16384" in message


def test_image_over_the_byte_limit(api_http, data_uri):
    noise = np.random.default_rng(0).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    got, body = _image(api_http, data_uri(Image.fromarray(noise)))
    assert got == 413 and "limit of 524288 bytes" in _shape(body, 413, IMAGE_PARAM, "image_too_large")


def test_too_many_images(api_client, red_png, image_message):
    with pytest.raises(openai.BadRequestError) as info:
        api_client.chat.completions.create(model=MODEL, messages=[image_message("?", red_png, red_png, red_png)])
    assert "3 images is over this server's limit of 2" in _shape(info.value.response.json(), 400, "messages",
                                                                  "too_many_images")


def test_wrong_and_missing_api_key(base_url, api_http):
    wrong = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model=MODEL, messages=HELLO)
    assert info.value.status_code == 401
    assert _shape(info.value.response.json(), 401, code="invalid_api_key") == "Incorrect API key provided."
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    response = api_http.post("/v1/chat/completions", json={}, headers={"Authorization": ""})
    assert response.status_code == 401 and "didn't provide" in _shape(response.json(), 401)
    assert api_http.get("/health", headers={"Authorization": ""}).status_code == 200  # probes need no key


@pytest.mark.parametrize(("body", "param"), [({"max_tokens": 65}, "max_tokens"),
                                             ({"max_completion_tokens": 1000}, "max_completion_tokens")])
def test_max_tokens_over_the_limit(api_http, body, param):
    got, error = _post(api_http, **body)
    assert got == 400 and "limit of 64" in _shape(error, 400, param)


def test_n_above_one(api_client):
    with pytest.raises(openai.BadRequestError) as info:
        api_client.chat.completions.create(model=MODEL, messages=HELLO, n=2)
    assert "only n=1" in _shape(info.value.response.json(), 400, "n")


def test_malformed_json_and_schema_errors(api_http):
    response = api_http.post("/v1/chat/completions", content=b'{"model": "debug-vlm", "messages": [',
                             headers={"content-type": "application/json"})
    assert response.status_code == 400 and "could not parse the JSON" in _shape(response.json(), 400)
    cases = [({"messages": HELLO}, "model"),
             ({"model": MODEL, "messages": []}, "messages"),
             ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
             ({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
              "messages[0].content[0]"),
             ({"model": MODEL, "messages": HELLO, "temperature": 3}, "temperature"),
             ({"model": MODEL, "messages": HELLO, "stop": ["ok", ""]}, "stop[1]"),
             ({"model": MODEL, "messages": HELLO, "vlit": {"task": "dance"}}, "vlit.task")]
    for body, param in cases:  # 400, as OpenAI and vLLM answer a body that does not fit (not FastAPI's 422)
        response = api_http.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, body
        assert _shape(response.json(), 400, param, "invalid_request").startswith(f"{param}: ")


@pytest.mark.parametrize(("messages", "words"), [
    ([{"role": "assistant", "content": "Hi"}], "expected a user turn"),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "last message"),
    ([{"role": "user", "content": "What is <image> here?"}], "image_url parts"),
    ([{"role": "user", "content": "x"}, {"role": "system", "content": "late"}, {"role": "user", "content": "y"}],
     "system turn may only come first"),
])
def test_conversations_the_model_cannot_answer(api_http, messages, words):
    got, body = _post(api_http, messages=messages)
    assert got == 400 and words in _shape(body, 400)


def test_image_in_an_assistant_message(api_http, red_png):
    messages = [{"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": red_png}}]},
                {"role": "user", "content": "And?"}]
    got, body = _post(api_http, messages=messages)
    assert got == 400 and "only user messages" in _shape(body, 400, "messages[1].content[0]")


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_over_the_token_limit(api_http, stream):
    # Streamed too: the status line waits for the worker's verdict, so the refusal is a 400, not a 200.
    got, body = _post(api_http, messages=[{"role": "user", "content": "word " * 5000}], stream=stream)
    assert got == 400 and "limit of 4096" in _shape(body, 400, "messages", "context_length_exceeded")


def test_unknown_model_route_and_method(api_client, api_http):
    with pytest.raises(openai.NotFoundError) as info:
        api_client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert "debug-vlm" in _shape(info.value.response.json(), 404, "model", "model_not_found")
    response = api_http.get("/v1/nothing-here")
    assert response.status_code == 404 and _shape(response.json(), 404)
    response = api_http.get("/v1/chat/completions")
    assert response.status_code == 405 and _shape(response.json(), 405)


def test_body_over_the_limit(api_http):
    body = json.dumps({"model": MODEL, "messages": HELLO, "pad": "x" * (3 * 1024 * 1024)}).encode()
    response = api_http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit of 2097152 bytes" in _shape(response.json(), 413)

    def chunked():  # no Content-Length: the limit applies while the body is read
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    response = api_http.post("/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit of 2097152 bytes" in _shape(response.json(), 413)


def test_settings_validate_their_limits():
    from vlit.errors import VlitError

    with pytest.raises(VlitError, match="max_batch_size"):
        ServerSettings(max_batch_size=0)
    with pytest.raises(VlitError, match="default_max_tokens"):
        ServerSettings(max_tokens_limit=10)
    assert ServerSettings(allowed_image_hosts=("Example.COM",)).allowed_image_hosts == ("example.com",)

