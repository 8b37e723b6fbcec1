from __future__ import annotations

import io
import random
import re

import numpy as np
import pytest

from vlit.data.prompting.templates import TASK_TYPES
from vlit.data.sources import scene_tasks as st
from vlit.data.sources import scenes as sc
from vlit.errors import VlitError

SCENES = [sc.sample_scene(random.Random(i)) for i in range(60)]


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    a = _png(sc.render_scene(sc.sample_scene(random.Random(5))))
    b = _png(sc.render_scene(sc.sample_scene(random.Random(5))))
    c = _png(sc.render_scene(sc.sample_scene(random.Random(6))))
    assert a == b and a != c


def test_scenes_vary_in_size_background_and_count():
    assert {s.background for s in SCENES} == set(sc.BACKGROUNDS)
    assert {len(s.shapes) for s in SCENES} == {1, 2, 3, 4}
    assert len({s.width / s.height for s in SCENES}) > 10
    assert all(192 <= side <= 320 for s in SCENES for side in (s.width, s.height))


def test_shapes_are_distinct_visible_and_apart():
    for scene in SCENES:
        pairs = [(s.colour, s.kind) for s in scene.shapes]
        assert len(set(pairs)) == len(pairs)
        short = min(scene.width, scene.height)
        for s in scene.shapes:
            x1, y1, x2, y2 = s.box
            assert 0 <= x1 < x2 <= scene.width and 0 <= y1 < y2 <= scene.height
            # at 224 px the short side shrinks by at most 320/224: still well over 15 px
            assert min(x2 - x1, y2 - y1) >= 0.12 * short
        for i, a in enumerate(scene.shapes):
            for b in scene.shapes[i + 1:]:
                assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]
        assert [s.centre[0] for s in scene.shapes] == sorted(s.centre[0] for s in scene.shapes)


@pytest.mark.parametrize("index", range(0, 60, 7))
def test_boxes_are_tight_around_the_shape_colour(index):
    scene = SCENES[index]
    pixels = np.asarray(sc.render_scene(scene)).astype(int)
    assert pixels.shape == (scene.height, scene.width, 3)
    for shape in scene.shapes:
        match = np.all(pixels == sc.COLOURS[shape.colour], axis=-1)
        x1, y1, x2, y2 = shape.box
        inside = match[y1:y2, x1:x2]
        assert inside.sum() == shape.area
        # the drawn pixels touch all four sides of the box
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()


def test_every_scene_task_type_is_a_known_task_type():
    assert set(st.TASKS) <= set(TASK_TYPES)
    assert set(TASK_TYPES) - set(st.TASKS) == {"multiple_choice", "classification"}


@pytest.mark.parametrize("kind", st.TASKS)
def test_examples_build_valid_records(kind):
    examples = st.examples(kind, 8, random.Random(0))
    assert len(examples) == 8
    for e in examples:
        assert e.task.type == kind
        if e.task.boxes:
            assert e.task.image_size == e.image.size


def test_counting_answers_recount_the_scene():
    rng = random.Random(0)
    for scene in SCENES:
        task = st.make_task("counting", scene, rng)
        word = task.phrase.split()[0]
        if word == "shapes":
            expected = len(scene.shapes)
        elif word.endswith("s") and word[:-1] in sc.KINDS:
            expected = sum(s.kind == word[:-1] for s in scene.shapes)
        else:
            expected = sum(word in (s.colour, s.size) for s in scene.shapes)
        assert task.answers[0] == str(expected)


def test_spatial_answers_agree_with_box_centres():
    rng = random.Random(0)
    seen = 0
    for scene in SCENES:
        by_name = {s.name: s for s in scene.shapes}
        for family in st.spatial_families(scene)[:2]:
            for question, (answer,) in family:
                a, relation, b = re.match(r"Is the (\w+ \w+) (to the left of|above) the (\w+ \w+)\?", question).groups()
                axis = 0 if relation == "to the left of" else 1
                truth = by_name[a].centre[axis] < by_name[b].centre[axis]
                assert answer == ("yes" if truth else "no")
                seen += 1
        if len(scene.shapes) == 1:
            assert st.make_task("spatial", scene, rng) is None
    assert seen > 50


def test_yes_no_is_roughly_balanced():
    answers = [e.task.answer for e in st.examples("yes_no", 200, random.Random(2))]
    assert 70 <= answers.count("yes") <= 130


def test_detection_finds_every_shape_of_the_kind():
    rng = random.Random(0)
    for scene in SCENES:
        task = st.make_task("detection", scene, rng)
        value = task.phrase.split()[0].removesuffix("s")
        expected = [s.box for s in scene.shapes if value in (s.kind, s.colour)]
        assert list(task.boxes) == expected and expected


def test_spatial_words_stay_out_of_trained_scene_tasks():
    # The quickstart holds out visual reasoning: no other task may ask about positions or relative size.
    words = re.compile(r"\b(left|right|above|below|top|bottom|largest|smallest|closest)\b", re.IGNORECASE)
    for kind in st.TASKS:
        if kind == "spatial":
            continue
        for e in st.examples(kind, 40, random.Random(4)):
            text = " ".join([e.task.question or "", *e.task.answers, *(q for r in e.task.dialogue for q in r)])
            assert not words.search(text), (kind, text)


def test_unknown_task_is_an_error():
    with pytest.raises(VlitError, match="not 'classification'"):
        st.examples("classification", 1, random.Random(0))
