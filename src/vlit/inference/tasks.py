"""MiniGPT-v2's task identifiers, read off the task specs: one place for the terminal chat, the API server and
the web demo."""

from __future__ import annotations

from vlit.data.prompting.tasks import TASKS as TASK_SPECS

TASKS: tuple[str, ...] = tuple(dict.fromkeys(s.identifier for s in TASK_SPECS.values() if s.identifier))
"""The identifiers a question may start with, written `[task]` (FORMATS.md), in task-spec order."""

def with_task(question: str, task: str | None) -> str:
    """The question with its `[task]` identifier in front (unchanged when `task` is None)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    return f"[{task}] {question}" if task else question
