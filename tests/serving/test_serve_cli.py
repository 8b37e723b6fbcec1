"""`vlit serve`: arguments -> settings, and one-line errors before anything is served."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest

from vlit.cli import main
from vlit.serving.cli import serve_parser, serve_settings


def test_arguments_become_settings(tmp_path):
    folder = tmp_path / "my-model"
    args = serve_parser().parse_args(["--checkpoint", str(folder), "--allow-image-host", "Images.Example.com",
                                      "--allow-image-host", "cdn.example.org", "--max-tokens-limit", "100",
                                      "--max-batch-size", "4", "--max-body-mb", "1.5", "--api-key", "k"])
    settings = serve_settings(args)
    assert settings.model_name == "my-model"  # the folder's name unless --model-name says otherwise
    assert settings.allowed_image_hosts == ("images.example.com", "cdn.example.org")
    assert settings.default_max_tokens == 100 and settings.max_tokens_limit == 100
    assert settings.max_batch_size == 4 and settings.max_body_bytes == int(1.5 * 1024 * 1024)
    assert settings.api_key == "k"


def test_api_key_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VLIT_API_KEY", "from-env")
    assert serve_settings(serve_parser().parse_args(["--checkpoint", str(tmp_path)])).api_key == "from-env"


@pytest.mark.parametrize(("extra", "words"), [
    ([], "not a vlit checkpoint"),
    (["--max-batch-size", "0"], "max_batch_size: must be >= 1"),
    (["--default-max-tokens", "500", "--max-tokens-limit", "100"], "default_max_tokens"),
    (["--port", "70000"], "--port: must be in 1..65535"),
])
def test_bad_checkpoint_or_limits_are_one_line_errors(tmp_path, capsys, extra, words):
    assert main(["serve", "--checkpoint", str(tmp_path / "nowhere"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vlit serve: error: ") and words in err and err.count("\n") == 1


@pytest.mark.slow
def test_vlit_serve_answers_the_openai_client(checkpoint, tmp_path):
    """The real command in its own process: listens, answers, needs its key."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "VLIT_API_KEY": "sk-cli"}
    process = subprocess.Popen([sys.executable, "-m", "vlit.cli", "serve", "--checkpoint", str(checkpoint),
                                "--port", str(port), "--model-name", "cli-model"], stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "vlit serve did not start"
            time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-cli", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["cli-model"]
        out = client.chat.completions.create(model="cli-model", messages=[{"role": "user", "content": "Hi"}],
                                             max_tokens=4)
        assert out.usage.completion_tokens <= 4
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).status_code == 401
    finally:
        process.terminate()
        process.wait(30)
        log.close()
