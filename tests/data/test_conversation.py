"""`vlit.data.conversation`: the one data object; its checks, the Q-Former's instruction, growing a chat."""

from __future__ import annotations

import pytest

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn


def test_single_puts_the_image_marker_first_and_keeps_meta():
    conv = Conversation.single("What is it?", "A cat.", image="cat.png", dataset="pets")
    assert [t.role for t in conv.turns] == ["user", "assistant"]
    assert conv.turns[0].content == f"{IMAGE_TOKEN}\nWhat is it?" and conv.images == ["cat.png"]
    assert conv.meta == {"dataset": "pets"} and conv.num_image_markers == 1
    assert Conversation.single("Hi.").turns[0].content == "Hi."  # no image, no marker
    conv.check()


@pytest.mark.parametrize(("turns", "images", "message"), [
    ([Turn("user", "<image>\nQ")], [], r"0 image\(s\) but 1 <image> marker"),
    ([Turn("user", "Q"), Turn("system", "S")], [], r"turns\[1\]: a system turn may only come first"),
    ([Turn("system", "S")], [], "no user or assistant turn"),
    ([Turn("assistant", "A")], [], r"turns\[0\]: expected a user turn"),
    ([Turn("user", "Q"), Turn("user", "Q2")], [], r"turns\[1\]: expected a assistant turn"),
])
def test_check_names_the_first_problem(turns, images, message):
    with pytest.raises(ValueError, match=message):
        Conversation(turns, images).check()


def test_turns_validate_role_and_text():
    with pytest.raises(ValueError, match="role: 'bot'"):
        Turn("bot", "x")
    with pytest.raises(ValueError, match="content: expected text"):
        Turn("user", 3)


def test_the_instruction_is_the_image_turn_without_its_marker():
    conv = Conversation([Turn("system", "Be brief."), Turn("user", "Hello"), Turn("assistant", "Hi"),
                         Turn("user", f"{IMAGE_TOKEN}\nWhat colour is the ball?")], ["ball.png"])
    assert conv.system == "Be brief." and len(conv.messages) == 3
    assert conv.instruction() == "What colour is the ball?"
    assert Conversation([Turn("user", "Just text")]).instruction() == "Just text"


def test_add_copies_instead_of_mutating():
    conv = Conversation.single("Q", image="a.png", task="vqa")
    longer = conv.add("assistant", "A")
    assert len(conv.turns) == 1 and len(longer.turns) == 2
    longer.meta["task"] = "changed"
    longer.images.append("b.png")
    assert conv.meta == {"task": "vqa"} and conv.images == ["a.png"]
