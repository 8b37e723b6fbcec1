"""The task specs: one per task type, and every former list of task types reads them."""

from __future__ import annotations

from typing import get_args

import pytest

from vlit.config.model import StyleName
from vlit.data.prompting.styles import STYLES
from vlit.data.prompting.tasks import SCORABLE_TYPES, TASK_TYPES, TASKS, task_spec
from vlit.data.prompting.templates import TaskType, load_templates
from vlit.errors import VlitError
from vlit.evaluation.metrics import METRICS
from vlit.inference.tasks import TASKS as IDENTIFIERS


def test_one_spec_per_task_type():
    assert TASK_TYPES == get_args(TaskType) == tuple(TASKS)
    assert all(name == spec.name for name, spec in TASKS.items())
    assert set(load_templates()) == set(TASKS)  # one template file each, placeholders checked against the spec


def test_unknown_task_names_the_known_ones():
    assert task_spec("refer").one_box
    with pytest.raises(VlitError, match=r"task.type: 'nope' is not one of caption, vqa, "):
        task_spec("nope")


def test_metrics_and_answer_budgets():
    assert all(spec.metric is None or spec.metric in METRICS for spec in TASKS.values())
    assert set(TASK_TYPES) - set(SCORABLE_TYPES) == {"question_generation", "detection", "grounded_caption"}
    assert {n: s.answer_tokens for n, s in TASKS.items() if s.answer_tokens != 16} == {"caption": 64, "refer": 32}


def test_minigptv2_identifiers_come_from_the_specs():
    assert set(IDENTIFIERS) == {"refer", "grounding", "identify", "detection", "vqa", "caption"}
    assert [n for n, s in TASKS.items() if s.identifier is None] == ["question_generation"]


def test_every_style_renders_every_prompt_form():
    forms = {spec.prompt for spec in TASKS.values()}
    assert forms == {"short_answer", "choice", "caption", "question_generation", "dialogue", "refer", "identify",
                     "detection", "grounded_caption"}
    assert set(STYLES) == set(get_args(StyleName))
