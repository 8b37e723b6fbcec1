"""LLaVA conversation files (a JSON array or JSONL) and LLaVA evaluation question files <-> `Conversation`.

A row is `{"id", "image", "conversations": [{"from": "human"|"gpt"|"system", "value"}]}`; `image` is absent
for text-only rows and may be a list for several images. Every other key of a row travels verbatim in
`Conversation.meta` and is written back after the three LLaVA keys, so vlit's own files round-trip byte for
byte. As in LLaVA's loader, a row with images but no `<image>` marker gets `<image>\\n` per image at the start
of its first human turn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.reading.rows import Problem, RowError, iter_raw_rows
from vlit.errors import VlitError

ROLE_FROM_LLAVA = {"human": "user", "gpt": "assistant", "system": "system"}
LLAVA_FROM_ROLE = {role: name for name, role in ROLE_FROM_LLAVA.items()}
ROW_KEYS = ("id", "image", "conversations")
TURN_KEYS = ("from", "value")


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def row_images(row: Any) -> list[str]:
    """The row's image paths, or [] when the row has none or its `image` field is ill-typed."""
    image = row.get("image") if isinstance(row, dict) else None
    if isinstance(image, str) and image:
        return [image]
    if isinstance(image, list) and image and all(isinstance(i, str) and i for i in image):
        return list(image)
    return []


def _image_problems(row: dict) -> list[Problem]:
    if "image" not in row or row["image"] is None:
        return []
    if row_images(row):
        return []
    return [Problem("image", "type", "expected a non-empty path or a non-empty list of paths, "
                                     f"got {json.dumps(row['image'], ensure_ascii=False)[:60]}")]


def _turn_problems(index: int, turn: Any) -> list[Problem]:
    field = f"conversations[{index}]"
    if not isinstance(turn, dict):
        return [Problem(field, "type", f"expected an object, got {type(turn).__name__}")]
    problems = [Problem(f"{field}.{k}", "unknown_key", "unknown key") for k in turn if k not in TURN_KEYS]
    role, value = turn.get("from"), turn.get("value")
    if "from" not in turn:
        problems.append(Problem(f"{field}.from", "missing", "missing"))
    elif not isinstance(role, str) or role not in ROLE_FROM_LLAVA:  # a list or object is unhashable
        problems.append(Problem(f"{field}.from", "role", f"unknown role {repr(role)[:60]} (expected human, gpt or "
                                                         "system)"))
    if "value" not in turn:
        problems.append(Problem(f"{field}.value", "missing", "missing"))
    elif not isinstance(value, str):
        problems.append(Problem(f"{field}.value", "type", f"expected text, got {type(value).__name__}"))
    elif not value.strip():
        problems.append(Problem(f"{field}.value", "empty", "empty text"))
    elif IMAGE_TOKEN in value and role in ("gpt", "system"):
        problems.append(Problem(f"{field}.value", "markers", f"{IMAGE_TOKEN} marker in a {role} turn"))
    return problems


def _order_problem(roles: list[str]) -> Problem | None:
    start = 1 if roles and roles[0] == "system" else 0
    for i, role in enumerate(roles):
        if i >= start:
            expected = "human" if (i - start) % 2 == 0 else "gpt"
            if role != expected:
                return Problem(f"conversations[{i}].from", "order", f"expected {expected}, got {role}")
    if start == len(roles):
        return Problem("conversations", "order", "no human turn")
    return None


def row_problems(row: Any) -> list[Problem]:
    """Everything structurally wrong with one decoded row (images on disk are checked by `validate`)."""
    if not isinstance(row, dict):
        return [Problem("", "type", f"expected a JSON object, got {type(row).__name__}")]
    problems = []
    if "id" in row and not _is_id(row["id"]):
        problems.append(Problem("id", "type", f"expected text or an integer, got {type(row['id']).__name__}"))
    problems += _image_problems(row)
    turns = row.get("conversations")
    if "conversations" not in row:
        return [*problems, Problem("conversations", "missing", "missing")]
    if not isinstance(turns, list):
        return [*problems, Problem("conversations", "type", f"expected a list, got {type(turns).__name__}")]
    if not turns:
        return [*problems, Problem("conversations", "empty", "no turns")]
    turn_problems = [p for i, t in enumerate(turns) for p in _turn_problems(i, t)]
    if turn_problems:
        return problems + turn_problems
    order = _order_problem([t["from"] for t in turns])
    if order is not None:
        problems.append(order)
    markers = sum(t["value"].count(IMAGE_TOKEN) for t in turns)
    images = len(row_images(row))
    if markers and markers != images:
        problems.append(Problem("conversations", "markers",
                                f"{markers} {IMAGE_TOKEN} marker(s) but {images} image(s)"))
    return problems


def parse_row(row: Any, where: str) -> Conversation:
    """One decoded row -> Conversation; raises RowError naming the first problem."""
    problems = row_problems(row)
    if problems:
        raise RowError(where, problems[0])
    images = row_images(row)
    turns = [Turn(ROLE_FROM_LLAVA[t["from"]], t["value"]) for t in row["conversations"]]
    if images and not any(IMAGE_TOKEN in t.content for t in turns):
        first = next(i for i, t in enumerate(turns) if t.role == "user")
        turns[first] = Turn("user", f"{IMAGE_TOKEN}\n" * len(images) + turns[first].content)
    row_id = row.get("id")
    meta = {k: v for k, v in row.items() if k not in ROW_KEYS}
    return Conversation(turns, list(images), None if row_id is None else str(row_id), meta)


def read_conversations(path: str | Path) -> list[Conversation]:
    """Every row of a LLaVA JSON/JSONL file; the first bad row raises RowError (use `validate` to see all)."""
    conversations = []
    for raw in iter_raw_rows(path):
        if raw.error is not None:
            raise raw.error
        conversations.append(parse_row(raw.value, raw.where))
    return conversations


def _image_path(ref: Any, where: str) -> str:
    if isinstance(ref, Path):
        return ref.as_posix()
    if isinstance(ref, str):
        return ref
    raise VlitError(f"{where}: images: an in-memory image cannot be written to LLaVA JSON; save it to a file "
                    "and refer to its path")


def conversation_to_row(conversation: Conversation, where: str = "conversation") -> dict[str, Any]:
    """The LLaVA row of a conversation: id, image, conversations, then the meta keys in their order."""
    row: dict[str, Any] = {}
    if conversation.id is not None:
        row["id"] = conversation.id
    paths = [_image_path(ref, where) for ref in conversation.images]
    if paths:
        row["image"] = paths[0] if len(paths) == 1 else paths
    row["conversations"] = [{"from": LLAVA_FROM_ROLE[t.role], "value": t.content} for t in conversation.turns]
    for key, value in conversation.meta.items():
        if key in ROW_KEYS:
            raise VlitError(f"{where}: meta.{key}: clashes with the LLaVA field of the same name")
        row[key] = value
    problems = row_problems(row)
    if problems:
        # Written files must read back unchanged, so refuse what the reader would reject or rewrite.
        raise RowError(where, problems[0])
    if paths and conversation.num_image_markers == 0:
        raise VlitError(f"{where}: conversations: {len(paths)} image(s) but no {IMAGE_TOKEN} marker")
    return row


def dumps_conversations(conversations: Iterable[Conversation], jsonl: bool) -> str:
    """Deterministic text: JSON with indent 2 and a trailing newline, or one compact row per line."""
    rows = [conversation_to_row(c, f"conversations[{i}]") for i, c in enumerate(conversations)]
    try:
        if jsonl:
            return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
        return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    except TypeError as e:
        raise VlitError(f"meta: a value is not JSON-serialisable ({e})") from None


def write_conversations(path: str | Path, conversations: Iterable[Conversation]) -> None:
    """Write a `.json` (array) or `.jsonl` file."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ".jsonl"):
        raise VlitError(f"{path}: expected a .json or .jsonl file name")
    text = dumps_conversations(conversations, jsonl=path.suffix.lower() == ".jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _question_problems(row: Any) -> list[Problem]:
    if not isinstance(row, dict):
        return [Problem("", "type", f"expected a JSON object, got {type(row).__name__}")]
    problems = []
    if "question_id" not in row:
        problems.append(Problem("question_id", "missing", "missing"))
    elif not _is_id(row["question_id"]):
        problems.append(Problem("question_id", "type", "expected text or an integer"))
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(Problem("text", "missing" if text is None else "empty", "expected a question"))
    if "image" in row and not (isinstance(row["image"], str) and row["image"]):
        problems.append(Problem("image", "type", "expected a non-empty path"))
    return problems


def parse_question(row: Any, where: str) -> Conversation:
    """One decoded question row -> a single-turn conversation; raises RowError naming its first problem."""
    problems = _question_problems(row)
    if problems:
        raise RowError(where, problems[0])
    image = row.get("image")
    text = row["text"] if image is None or IMAGE_TOKEN in row["text"] else f"{IMAGE_TOKEN}\n{row['text']}"
    meta = {k: v for k, v in row.items() if k not in ("image", "text")}
    return Conversation([Turn("user", text)], [] if image is None else [image], str(row["question_id"]), meta)


def read_questions(path: str | Path) -> list[Conversation]:
    """A LLaVA evaluation question file (`{"question_id", "image", "text", "category"}` per line) as
    single-turn conversations; `question_id`, `category` and any other key go to meta."""
    conversations = []
    for raw in iter_raw_rows(path):
        if raw.error is not None:
            raise raw.error
        conversations.append(parse_question(raw.value, raw.where))
    return conversations
