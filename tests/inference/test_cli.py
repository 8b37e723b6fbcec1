from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from vlit.cli import main
from vlit.data.conversation import Conversation
from vlit.inference.grounding import parse_grounding
from vlit.inference.pipeline import Pipeline

FEW = ["--max-new-tokens", "5"]


@pytest.fixture(scope="module")
def loaded(checkpoint) -> Pipeline:
    return Pipeline.from_pretrained(checkpoint)


@pytest.fixture
def image_path(tmp_path, red_image) -> Path:
    path = tmp_path / "red.png"
    red_image.save(path)
    return path


def test_ask_prints_the_generated_answer(checkpoint, loaded, image_path, capsys):
    argv = ["ask", "--checkpoint", str(checkpoint), "--image", str(image_path), "What colour?", *FEW]
    assert main(argv) == 0
    expected = loaded.chat(Conversation.single("What colour?", image=image_path), max_new_tokens=5)
    assert capsys.readouterr().out.splitlines()[0] == expected


def test_ask_ranks_box_candidates_and_draws_them(checkpoint, loaded, image_path, tmp_path, capsys):
    candidates = ["{<10><20><30><40>}", "{<50><50><90><90>}", "no box"]
    code = main(["ask", "--checkpoint", str(checkpoint), "--image", str(image_path), "the red square",
                 "--task", "refer", "--candidates", ",".join(candidates), "--json",
                 "--draw", str(tmp_path / "drawn.png")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    result = loaded.rank(Conversation.single("[refer] the red square", image=image_path), candidates)
    assert out["answer"] == result.best
    assert list(out["scores"]) == [c for c, _ in result.ranked()]
    assert out["scores"] == pytest.approx(dict(result.ranked()), abs=1e-4)
    boxes = [g.to_dict() for g in parse_grounding(result.best, 40, 30)]
    assert out["boxes"] == boxes
    assert out["drawing"] == str(tmp_path / "drawn.png")
    with Image.open(tmp_path / "drawn.png") as drawn:
        assert drawn.size == (40, 30)


@pytest.mark.parametrize(("args", "message"), [
    (["--image", "missing.png", "q"], "missing.png: no such file"),
    (["--candidates", "a,,b", "q"], "candidate 2 of 3 is empty"),
    (["--candidates", "a, b,a", "q"], "'a' is given twice"),
    (["--max-new-tokens", "0", "q"], "max_new_tokens: must be >= 1"),
    (["--draw", "x.png", "q"], "--draw: needs --image"),
])
def test_ask_errors_are_one_line(args, message, checkpoint, capsys):
    assert main(["ask", "--checkpoint", str(checkpoint), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("vlit ask: error:")


def test_ask_rejects_a_folder_that_is_no_checkpoint(tmp_path, capsys):
    assert main(["ask", "--checkpoint", str(tmp_path), "q"]) == 2
    assert "not a vlit checkpoint" in capsys.readouterr().err


class Terminal:
    """A process on a pseudo terminal: send lines, read what it prints (pty turns "\\n" into "\\r\\n")."""

    def __init__(self, argv: list[str]):
        self.master, slave = pty.openpty()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.seen = ""

    def read_until(self, marker: str, timeout: float = 120) -> str:
        """Everything printed up to and including the next `marker`."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"timed out waiting for {marker!r}; got {self.seen[-500:]!r}")
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: the process has exited and closed the terminal
                data = b""
            if not data:
                raise AssertionError(f"exited before {marker!r}; got {self.seen[-500:]!r}")
            self.seen += data.decode("utf-8", errors="replace").replace("\r\n", "\n")
        upto, self.seen = self.seen.split(marker, 1)
        return upto + marker

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> int:
        code = self.process.wait(timeout=60)
        os.close(self.master)
        return code


def _answer(transcript: str) -> str:
    return transcript.split("assistant: ", 1)[1].rsplit("\nyou> ", 1)[0]


def test_chat_through_a_pseudo_terminal(checkpoint, loaded, image_path, tmp_path):
    term = Terminal([sys.executable, "-m", "vlit.cli", "chat", "--checkpoint", str(checkpoint), *FEW])
    try:
        term.read_until("you> ")
        term.send(f"/image {tmp_path / 'nope.png'}")
        out = term.read_until("you> ")
        assert "error: " in out and "nope.png: no such file" in out
        term.send(f"/image {image_path}")
        assert "(image: " in term.read_until("you> ")
        term.send("/task refer")
        assert "(task: refer)" in term.read_until("you> ")
        term.send("/task nonsense")
        assert "error: /task" in term.read_until("you> ")

        first = Conversation.single("[refer] where is it?", image=image_path)
        expected = loaded.chat(first, max_new_tokens=5)
        term.send("where is it?")
        assert _answer(term.read_until("you> ")) == expected

        second = first.add("assistant", expected).add("user", "[refer] and now?")
        term.send("and now?")
        assert _answer(term.read_until("you> ")) == loaded.chat(second, max_new_tokens=5)

        term.send("/reset")
        assert "(conversation reset)" in term.read_until("you> ")
        term.send("where is it?")
        assert _answer(term.read_until("you> ")) == expected  # a fresh conversation again
        term.send("/quit")
    finally:
        code = term.close()
    assert code == 0


def test_chat_leaves_on_end_of_input(checkpoint):
    term = Terminal([sys.executable, "-m", "vlit.cli", "chat", "--checkpoint", str(checkpoint)])
    try:
        term.read_until("you> ")
        os.write(term.master, b"\x04")  # Ctrl-D on an empty line: end of input
    finally:
        code = term.close()
    assert code == 0


@pytest.mark.parametrize(("temperature", "top_p", "expected"), [
    (None, None, {"do_sample": False}),
    (0.0, None, {"do_sample": False}),
    (0.7, None, {"do_sample": True, "temperature": 0.7, "top_p": 1.0}),
    (None, 0.9, {"do_sample": True, "temperature": 1.0, "top_p": 0.9}),
])
def test_temperature_zero_means_greedy(temperature, top_p, expected):
    import argparse

    from vlit.inference.cli import generation_options

    args = argparse.Namespace(temperature=temperature, top_p=top_p, max_new_tokens=8, num_beams=1, seed=None, stop=[])
    options = generation_options(args)
    assert {k: options[k] for k in expected} == expected
    assert ("temperature" in options) == expected["do_sample"]


def test_ask_refuses_an_image_that_is_no_regular_file_in_one_line(checkpoint, special_files, capsys):
    for path, reason in special_files.items():
        assert main(["ask", "--checkpoint", str(checkpoint), "--image", str(path), "q"]) == 2
        assert capsys.readouterr().err == f"vlit ask: error: {path}: {reason}\n"
