"""Serving fixtures: one live API server on 127.0.0.1 (debug checkpoint, small limits) for the whole session,
the official OpenAI client pointed at it, and a local HTTP server holding images for allowed-URL tests."""

from __future__ import annotations

import base64
import functools
import io
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest
from PIL import Image

from vlit.serving.settings import ServerSettings

API_KEY = "sk-vlit-test"
MODEL = "debug-vlm"
SETTINGS = ServerSettings(
    model_name=MODEL, api_key=API_KEY, max_batch_size=8, batch_wait_ms=50, max_queue=64,
    max_body_bytes=2 * 1024 * 1024, max_image_bytes=512 * 1024, max_image_pixels=128 * 128, max_images=2,
    max_tokens_limit=64, default_max_tokens=16, allowed_image_hosts=("127.0.0.1",), image_fetch_timeout_s=5)


def _data_uri(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def _image_message(text: str, *urls: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


@pytest.fixture(scope="session")
def data_uri():
    """`data_uri(image, fmt="PNG")`: the image as a base64 data URI."""
    return _data_uri


@pytest.fixture(scope="session")
def image_message():
    """`image_message(text, *urls)`: a user message with image parts first, then the text."""
    return _image_message


@pytest.fixture(scope="session")
def api_pipe(checkpoint):
    from vlit.inference.pipeline import Pipeline

    return Pipeline.from_pretrained(checkpoint)


@pytest.fixture(scope="session")
def api_server(api_pipe):
    """(base URL, app) of the live server; tests share it, so each leaves it answering."""
    from vlit.serving.api import create_app
    from vlit.serving.background import serve_in_background

    app = create_app(api_pipe, SETTINGS)
    with serve_in_background(app) as url:
        yield url, app


@pytest.fixture(scope="session")
def base_url(api_server) -> str:
    return api_server[0]


@pytest.fixture(scope="session")
def api_client(base_url) -> openai.OpenAI:
    # No retries: the tests assert the first answer's status, and 503s would otherwise be retried.
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="session")
def api_http(base_url) -> httpx.Client:
    """A raw HTTP client with the key, for requests the OpenAI client will not send."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def image_host(tmp_path_factory) -> str:
    """Base URL of a local static file server with `small.png` and `big.bin` (over the image byte limit)."""
    root = tmp_path_factory.mktemp("image_host")
    Image.new("RGB", (32, 24), (10, 200, 30)).save(root / "small.png")
    (root / "big.bin").write_bytes(b"\0" * (SETTINGS.max_image_bytes + 1))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def red_png() -> str:
    """The root conftest's `red_image` as a PNG data URI."""
    return _data_uri(Image.new("RGB", (40, 30), (220, 20, 20)))


@pytest.fixture(scope="session")
def reference(checkpoint):
    """A second pipeline on the same checkpoint, for expected answers: the server's own pipeline belongs to its
    worker thread."""
    from vlit.inference.pipeline import Pipeline

    return Pipeline.from_pretrained(checkpoint)
