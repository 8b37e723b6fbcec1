"""MiniGPT-v2's task identifiers: one place for the terminal chat, the API server and the web demo."""

from __future__ import annotations

TASKS: tuple[str, ...] = ("refer", "grounding", "identify", "detection", "vqa", "caption")
"""The identifiers a question may start with, written `[task]` (FORMATS.md)."""

GROUNDING_TASKS: frozenset[str] = frozenset({"refer", "grounding", "detection"})
"""Tasks whose answers carry boxes worth parsing and drawing."""


def with_task(question: str, task: str | None) -> str:
    """The question with its `[task]` identifier in front (unchanged when `task` is None)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task: {task!r} is not one of {', '.join(TASKS)}")
    return f"[{task}] {question}" if task else question
