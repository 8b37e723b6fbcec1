"""The web demo in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

One test serves the page in a background thread with a scripted pipeline whose answer carries MiniGPT-v2
boxes, and checks the chat and the drawing pixel for pixel; one runs `vlit demo` itself on the debug
checkpoint for a plain two-turn chat. Both check that the page asks nothing of any host but the demo's own,
and save a screenshot to $VLIT_TEST_ARTIFACTS (default: test-artifacts/ at the repository root). Every wait
is bounded, so a hang fails instead of blocking.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw

from vlit.data.reading.images import load_image
from vlit.inference.grounding import draw_grounding, parse_grounding

pytestmark = [
    pytest.mark.slow,
    # gradio 6.31's queue calls pandas options that pandas 3 deprecates: its noise, not ours to fix.
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("gradio", reason="gradio is not installed (pip install 'vlit[serve]')")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True)

from vlit.serving.demo import build_demo, launch  # noqa: E402

expect = sync_api.expect
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("VLIT_TEST_ARTIFACTS") or ROOT / "test-artifacts")
TIMEOUT_MS = 30_000
GROUNDED = "<p>red circle</p>{<10><20><30><40>}"


class ScriptedPipe:
    """Stands in for a Pipeline: streams the given answers in turn, a few characters at a time."""

    processor = SimpleNamespace(image_spec=None)  # no model input frame: boxes are read on the image itself

    def __init__(self, *answers: str):
        self.answers = list(answers)

    def stream(self, conversation, **generation) -> Iterator[str]:
        answer = self.answers.pop(0)
        for i in range(0, len(answer), 5):
            time.sleep(0.02)  # slow enough for the page to see a partial answer
            yield answer[i:i + 5]

    def chat(self, conversation, **generation) -> str:
        return "".join(self.stream(conversation, **generation))


def circle_image(path: Path, size: tuple[int, int] = (480, 320)) -> Path:
    """A light grey image with a red circle where `GROUNDED`'s box is (x 10..30%, y 20..40%)."""
    image = Image.new("RGB", size, (235, 235, 235))
    w, h = size
    ImageDraw.Draw(image).ellipse((0.1 * w, 0.2 * h, 0.3 * w, 0.4 * h), fill=(220, 20, 20))
    image.save(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=TIMEOUT_MS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page that records every URL it requests (in `page.requested`)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    yield page
    context.close()


def offsite(requested: list[str], url: str) -> list[str]:
    """The requests that went anywhere but the demo's own host and port (data: and blob: URLs stay local)."""
    own = urlsplit(url).netloc
    return [u for u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and urlsplit(u).netloc != own]


def upload(page, path: Path, size: str) -> None:
    page.locator("#vlit-image input[type=file]").set_input_files(str(path))
    expect(page.locator("#vlit-status")).to_contain_text(f"image {size} · 0 exchanges")


def ask(page, text: str, task: str | None = None) -> None:
    if task is not None:
        page.locator("#vlit-task").get_by_label(task, exact=True).check()
    box = page.locator("#vlit-message textarea")
    box.fill(text)
    box.press("Enter")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_grounding_answer_is_drawn_in_the_browser(page, tmp_path):
    image_path = circle_image(tmp_path / "circle.png")
    demo = build_demo(ScriptedPipe(GROUNDED), title="vlit demo: scripted grounding")
    url = launch(demo, "127.0.0.1", free_port(), block=False, quiet=True)
    try:
        page.goto(url)
        upload(page, image_path, "480x320")
        ask(page, "where is the red circle?", task="grounding")

        user, bot = page.locator("#vlit-chat [data-testid=user]"), page.locator("#vlit-chat [data-testid=bot]")
        expect(user).to_have_text("[grounding] where is the red circle?")
        expect(bot).to_have_text(GROUNDED)  # streamed in, and shown literally rather than as HTML
        expect(page.locator("#vlit-status")).to_contain_text("1 exchange")
        drawn = page.locator("#vlit-drawing img")
        expect(drawn).to_be_visible()
        shot = screenshot(page, "demo-grounding.png")

        # The drawing the page shows is exactly the boxes of the answer on the uploaded image.
        response = page.request.get(drawn.get_attribute("src"), timeout=TIMEOUT_MS)
        assert response.ok
        shown = Image.open(io.BytesIO(response.body())).convert("RGB")
        picture = load_image(image_path)
        expected = draw_grounding(picture, parse_grounding(GROUNDED, *picture.size))
        assert shown.size == picture.size and shown.tobytes() == expected.tobytes()
        assert shown.tobytes() != picture.tobytes()

        page.locator("#vlit-reset").click()
        expect(page.locator("#vlit-status")).to_contain_text("image 480x320 · 0 exchanges")
        expect(bot).to_have_count(0)
        expect(drawn).to_have_count(0)
        assert offsite(page.requested, url) == []
    finally:
        demo.close()
    assert shot.stat().st_size > 0


def wait_for_url(process: subprocess.Popen, log: Path, timeout: float = 180) -> str:
    """The URL `vlit demo` prints once it serves, or a failure showing its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"http://127\.0\.0\.1:\d+/?", log.read_text(errors="replace"))
        if found:
            return found.group(0)
        if process.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"vlit demo did not start (exit code {process.poll()}):\n{log.read_text(errors='replace')[-3000:]}")


def test_vlit_demo_chats_with_the_debug_checkpoint(page, checkpoint, tmp_path):
    image_path = circle_image(tmp_path / "circle.png", (64, 48))
    log = tmp_path / "demo.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "vlit.cli", "demo", "--checkpoint", str(checkpoint),
            "--port", str(free_port()), "--max-new-tokens", "5"]
    with log.open("w") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url = wait_for_url(process, log)
        page.goto(url)
        expect(page).to_have_title("vlit demo: ckpt")
        upload(page, image_path, "64x48")
        ask(page, "What colour is the circle?")
        expect(page.locator("#vlit-status")).to_contain_text("1 exchange", timeout=2 * TIMEOUT_MS)
        ask(page, "Are you sure?", task="vqa")
        expect(page.locator("#vlit-status")).to_contain_text("2 exchanges", timeout=2 * TIMEOUT_MS)
        expect(page.locator("#vlit-chat [data-testid=user]")).to_have_text(
            ["What colour is the circle?", "[vqa] Are you sure?"])
        expect(page.locator("#vlit-chat [data-testid=bot]")).to_have_count(2)
        screenshot(page, "demo-chat.png")
        assert offsite(page.requested, url) == []
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
