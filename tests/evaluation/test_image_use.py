"""The image-shuffle check on the debug model: identical images shuffled change nothing, different ones do."""

from __future__ import annotations

import pytest
from PIL import Image

from vlit.data.conversation import Conversation, Turn
from vlit.errors import VlitError
from vlit.evaluation.image_use import image_shuffle_check
from vlit.inference.pipeline import Pipeline


def _rows(images: list[Image.Image]) -> list[Conversation]:
    return [Conversation([Turn("user", "<image>\nWhat colour is it?"), Turn("assistant", f"colour {i}")],
                         [image], f"row{i}") for i, image in enumerate(images)]


def test_shuffling_identical_images_changes_no_loss(debug_model):
    pipe = Pipeline(*debug_model)
    check = image_shuffle_check(pipe, _rows([Image.new("RGB", (32, 32), (200, 10, 10))] * 5), batch_size=2)
    assert check.rows == 5 and check.in_place > 0
    assert check.shuffled == pytest.approx(check.in_place, rel=1e-5)


def test_shuffling_different_images_changes_the_loss(debug_model):
    pipe = Pipeline(*debug_model)
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (240, 240, 240)]
    check = image_shuffle_check(pipe, _rows([Image.new("RGB", (32, 32), c) for c in colours]), batch_size=4)
    assert check.shuffled != pytest.approx(check.in_place, rel=1e-6)
    assert "in place vs" in str(check)


def test_rows_need_one_image_each(debug_model):
    pipe = Pipeline(*debug_model)
    rows = _rows([Image.new("RGB", (8, 8))] * 2)
    rows[1] = Conversation([Turn("user", "hi"), Turn("assistant", "hello")], [], "text-only")
    with pytest.raises(VlitError, match="text-only has 0 images"):
        image_shuffle_check(pipe, rows)
