from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vlit.data.conversation import Conversation, Turn
from vlit.data.reading.llava import (
    RowError,
    dumps_conversations,
    parse_row,
    read_conversations,
    read_questions,
    write_conversations,
)
from vlit.errors import VlitError

ROWS = [
    {"id": "000001", "image": "coco/1.jpg",
     "conversations": [{"from": "human", "value": "<image>\nWhat colour is the bus?"},
                       {"from": "gpt", "value": "White and red."},
                       {"from": "human", "value": "Where is it going?"},
                       {"from": "gpt", "value": "Downtown."}],
     "task": {"kind": "vqa", "answers": ["white"]}, "dataset": "coco"},
    {"id": "2", "conversations": [{"from": "system", "value": "Be brief."},
                                  {"from": "human", "value": "Say 'ciao' — in Italian?"},
                                  {"from": "gpt", "value": "Ciao, è facile."}]},
    {"id": "3", "image": ["a.png", "b.png"],
     "conversations": [{"from": "human", "value": "<image> and <image>: same?"},
                       {"from": "gpt", "value": "No."}]},
]


def _write(path: Path, rows: list, jsonl: bool) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows) if jsonl else json.dumps(rows)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_read_maps_roles_images_and_meta(tmp_path: Path, suffix: str) -> None:
    convs = read_conversations(_write(tmp_path / f"d{suffix}", ROWS, suffix == ".jsonl"))
    first, second, third = convs
    assert [t.role for t in first.turns] == ["user", "assistant", "user", "assistant"]
    assert first.images == ["coco/1.jpg"] and first.id == "000001"
    assert first.meta == {"task": {"kind": "vqa", "answers": ["white"]}, "dataset": "coco"}
    assert list(first.meta) == ["task", "dataset"]
    assert second.images == [] and second.system == "Be brief."
    assert second.turns[2].content == "Ciao, è facile."
    assert third.images == ["a.png", "b.png"] and third.num_image_markers == 2
    for c in convs:
        c.check()


def test_missing_marker_is_put_first_like_llava() -> None:
    row = {"id": 7, "image": "x.jpg", "conversations": [{"from": "human", "value": "What is it?"},
                                                        {"from": "gpt", "value": "A cat."}]}
    conv = parse_row(row, "f.json[0]")
    assert conv.turns[0].content == "<image>\nWhat is it?"
    assert conv.id == "7"


def test_roundtrip_is_byte_stable(tmp_path: Path) -> None:
    convs = read_conversations(_write(tmp_path / "d.json", ROWS, jsonl=False))
    for jsonl in (False, True):
        text = dumps_conversations(convs, jsonl=jsonl)
        path = tmp_path / ("out.jsonl" if jsonl else "out.json")
        write_conversations(path, convs)
        assert path.read_text(encoding="utf-8") == text
        again = read_conversations(path)
        assert dumps_conversations(again, jsonl=jsonl) == text
        assert again == convs
    pretty = dumps_conversations(convs, jsonl=False)
    assert pretty.endswith("]\n") and "è facile" in pretty and '\n  {\n    "id": "000001"' in pretty
    compact = dumps_conversations(convs, jsonl=True).splitlines()
    assert len(compact) == 3 and compact[0].startswith('{"id":"000001","image":"coco/1.jpg","conversations":')
    assert compact[0].endswith('"task":{"kind":"vqa","answers":["white"]},"dataset":"coco"}')


def test_write_orders_keys_and_writes_lists_for_several_images() -> None:
    conv = Conversation([Turn("user", "<image><image>hi"), Turn("assistant", "yo")], ["a.png", Path("b/c.png")],
                        None, {"z": 1, "a": 2})
    row = json.loads(dumps_conversations([conv], jsonl=True))
    assert list(row) == ["image", "conversations", "z", "a"]
    assert row["image"] == ["a.png", "b/c.png"]
    assert row["conversations"][1] == {"from": "gpt", "value": "yo"}


def test_write_refuses_what_it_could_not_read_back() -> None:
    in_memory = Conversation.single("q", "a", image=Image.new("RGB", (2, 2)))
    with pytest.raises(VlitError, match="in-memory image"):
        dumps_conversations([in_memory], jsonl=True)
    no_marker = Conversation([Turn("user", "q"), Turn("assistant", "a")], ["x.png"])
    with pytest.raises(VlitError, match="no <image> marker"):
        dumps_conversations([no_marker], jsonl=True)
    clash = Conversation([Turn("user", "q"), Turn("assistant", "a")], meta={"conversations": 1})
    with pytest.raises(VlitError, match=r"meta\.conversations"):
        dumps_conversations([clash], jsonl=True)


@pytest.mark.parametrize(("row", "field", "reason"), [
    ({"conversations": [{"from": "bot", "value": "x"}]}, "conversations[0].from", "unknown role 'bot'"),
    ({"conversations": [{"from": "gpt", "value": "x"}]}, "conversations[0].from", "expected human, got gpt"),
    ({"conversations": [{"from": "human", "value": " "}]}, "conversations[0].value", "empty"),
    ({"conversations": [{"from": "human"}]}, "conversations[0].value", "missing"),
    ({"id": 1}, "conversations", "missing"),
    ({"conversations": "hi"}, "conversations", "expected a list"),
    ({"image": 3, "conversations": [{"from": "human", "value": "x"}]}, "image", "non-empty path"),
    ({"image": "a.png", "conversations": [{"from": "human", "value": "<image><image>"}]}, "conversations",
     "2 <image> marker"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "<image>"}]},
     "conversations[1].value", "marker in a gpt turn"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "system", "value": "s"}]},
     "conversations[1].from", "expected gpt, got system"),
])
def test_bad_rows_name_the_row_and_field(row: dict, field: str, reason: str) -> None:
    with pytest.raises(RowError) as info:
        parse_row(row, "data.json[4]")
    assert str(info.value).startswith(f"data.json[4]: {field}:")
    assert reason in str(info.value)


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(RowError, match=rf"^{path}:3: invalid JSON"):
        read_conversations(path)


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[\n  {"id": 1,,}\n]', encoding="utf-8")
    with pytest.raises(VlitError, match=rf"^{path}:2:\d+: invalid JSON"):
        read_conversations(path)
    path.write_text('{"id": 1}', encoding="utf-8")
    with pytest.raises(VlitError, match="expected a JSON array"):
        read_conversations(path)


def test_missing_file_is_a_vlit_error(tmp_path: Path) -> None:
    with pytest.raises(VlitError, match="no such file"):
        read_conversations(tmp_path / "nope.json")


def test_evaluation_questions(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [{"question_id": 12, "image": "v/1.jpg", "text": "Is there a dog?", "category": "adversarial"},
            {"question_id": "b", "text": "Text only?", "extra": [1]}]
    _write(path, rows, jsonl=True)
    first, second = read_questions(path)
    assert first.turns == [Turn("user", "<image>\nIs there a dog?")] and first.images == ["v/1.jpg"]
    assert first.id == "12" and first.meta == {"question_id": 12, "category": "adversarial"}
    assert second.images == [] and second.turns[0].content == "Text only?"
    assert second.meta == {"question_id": "b", "extra": [1]}
    _write(path, [{"image": "x.jpg", "text": "?"}], jsonl=True)
    with pytest.raises(RowError, match=rf"{path}:1: question_id: missing"):
        read_questions(path)


@pytest.mark.parametrize("role", [["human"], {"a": 1}, 3, None])
def test_a_role_of_the_wrong_type_is_a_problem_not_a_crash(role) -> None:
    row = {"conversations": [{"from": role, "value": "hi"}, {"from": "gpt", "value": "a"}]}
    with pytest.raises(RowError, match=r"^r: conversations\[0\]\.from: unknown role "):
        parse_row(row, "r")
