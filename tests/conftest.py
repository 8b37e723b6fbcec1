"""Shared fixtures: the debug recipe (tiny random CLIP tower + tiny Llama) built once per session."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from PIL import Image

from vlit.config import Config, load_yaml

ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = ROOT / "src" / "vlit" / "configs" / "debug.yaml"
SAMPLE_NAMES = ("SAMPLES", "SHARED")
"""Module constants of tests that read the papers' real benchmark rows (`../shared/eval-samples`, beside the
checkout on the development machines): the project never copies those rows, so where the folder is absent the
tests that read it are skipped, said once per test, and every fixture-file test still runs."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    import inspect

    for item in items:
        module = getattr(item, "module", None)
        function = getattr(item, "function", None)
        for name in SAMPLE_NAMES:
            path = getattr(module, name, None)
            if path is None or Path(path).exists() or function is None:
                continue
            if name in inspect.getsource(function):
                item.add_marker(pytest.mark.skip(reason=f"{path}: the real benchmark rows are not on this machine"))


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Accelerate keeps one state per process (and refuses a second precision); each test starts afresh, as a
    new `vlit train` process would."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="session")
def debug_config() -> Config:
    return load_yaml(Config, DEBUG_CONFIG)


@pytest.fixture(scope="session")
def _debug_built(debug_config):
    from vlit.models.build import build_model

    return build_model(debug_config.model)


@pytest.fixture
def debug_model(_debug_built):
    """(model, processor) of the debug recipe; a deep copy, so a test may train or change it."""
    return copy.deepcopy(_debug_built)


@pytest.fixture(scope="session")
def checkpoint(_debug_built, tmp_path_factory) -> Path:
    """A saved debug checkpoint folder (what `vlit ask`, `vlit eval` and `vlit serve` load)."""
    from vlit.models.saving import save_model

    return save_model(_debug_built[0], tmp_path_factory.mktemp("debug-checkpoint") / "ckpt")


@pytest.fixture
def red_image() -> Image.Image:
    return Image.new("RGB", (40, 30), (220, 20, 20))


@pytest.fixture
def special_files(tmp_path: Path):
    """Paths no reader may read, each with the reason it is refused for (by its type, before a byte is read):
    a link to /dev/zero (reading it never ends), a FIFO (opening it waits for a writer), a directory.

    The FIFO has a writer waiting in a thread, so a reader that opened it anyway would see end of file and
    fail its test instead of blocking the whole run; the writer is released at teardown."""
    import os
    import threading

    folder = tmp_path / "special"
    folder.mkdir()
    zero = folder / "zero.png"
    zero.symlink_to("/dev/zero")
    fifo = folder / "fifo.png"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True)
    writer.start()
    directory = folder / "folder.png"
    directory.mkdir()
    yield {zero: "not a regular file (a character device, via a link to /dev/zero)",
           fifo: "not a regular file (a FIFO)", directory: "not a regular file (a directory)"}
    released = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets a still waiting writer's open() return
    writer.join()
    os.close(released)


@pytest.fixture
def sparse_file(tmp_path: Path):
    """`sparse_file(name, size)`: a file of `size` zero bytes that takes no disk space (`truncate`)."""
    def make(name: str, size: int) -> Path:
        path = tmp_path / name
        with open(path, "wb") as f:
            f.truncate(size)
        return path

    return make


def _train_lora(model, std: float = 0.02, seed: int = 0):
    """Give the LoRA adapters trained-looking weights (B != 0; fresh ones change nothing), in place."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=std)
    return model


@pytest.fixture(scope="session")
def train_lora():
    """`train_lora(model, std=0.02, seed=0)`: trained-looking LoRA adapters, so merging and exporting them count."""
    return _train_lora
