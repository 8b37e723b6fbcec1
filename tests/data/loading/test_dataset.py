from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from vlit.config.data import DatasetConfig, MixtureConfig
from vlit.data.loading.dataset import load_dataset, load_mixture, merge_conversations, qa_groups
from vlit.data.reading.llava import RowError, parse_row
from vlit.errors import VlitError


def _qa(row_id: str, image: str | None, question: str, answer: str, **meta: object) -> dict:
    row: dict = {"id": row_id}
    if image is not None:
        row["image"] = image
    row["conversations"] = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    return {**row, **meta}


ROWS = [
    _qa("1", "a.png", "<image>\nColour?", "Red."),
    _qa("2", "b.png", "<image>\nShape?", "Round."),
    _qa("3", "a.png", "Shape?", "Square."),  # no marker: LLaVA puts it first
    _qa("4", None, "Capital of Italy?", "Rome."),
    _qa("5", "a.png", "<image>\nHow many?", "Two."),
]


def _file(tmp_path: Path, rows: list, name: str = "d.jsonl") -> Path:
    for image in ("a.png", "b.png"):  # skip mode checks that each row's image file is there
        if not (tmp_path / image).exists():
            Image.new("RGB", (2, 2)).save(tmp_path / image)
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_as_is_keeps_rows_and_resolves_paths(tmp_path: Path) -> None:
    (tmp_path / "sets").mkdir()
    _file(tmp_path / "sets", ROWS)
    Image.new("RGB", (2, 2), (5, 6, 7)).save(tmp_path / "sets" / "a.png")
    ds = load_dataset(DatasetConfig("mine", "sets/d.jsonl"), root=tmp_path)
    assert len(ds) == 5 and ds.name == "mine" and ds.skipped == []
    assert ds.image_root == tmp_path / "sets"
    assert [c.id for c in ds.conversations] == ["1", "2", "3", "4", "5"]
    assert ds.get(2).turns[0].content == "<image>\nShape?"
    assert ds.get(0, epoch=3) is ds.get(0)  # as_is: nothing is re-rendered
    assert ds.image(ds.get(0).images[0]).getpixel((0, 0)) == (5, 6, 7)
    other = load_dataset(DatasetConfig("mine", "sets/d.jsonl", image_root="pics"), root=tmp_path)
    assert other.image_root == tmp_path / "pics"


def test_max_rows(tmp_path: Path) -> None:
    ds = load_dataset(DatasetConfig("d", str(_file(tmp_path, ROWS)), max_rows=2))
    assert [c.id for c in ds.conversations] == ["1", "2"]


def test_fail_names_file_line_and_field(tmp_path: Path) -> None:
    path = _file(tmp_path, [ROWS[0], {"id": "x", "conversations": [{"from": "bot", "value": "hi"}]}])
    with pytest.raises(RowError, match=rf"^{path}:2: conversations\[0\]\.from: unknown role 'bot'"):
        load_dataset(DatasetConfig("d", str(path)), on_bad_row="fail")


def test_skip_keeps_every_valid_row_and_reports_the_rest(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = _file(tmp_path, [ROWS[0], "{oops", ROWS[1], {"id": "q", "conversations": []}, ROWS[3]])
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(DatasetConfig("d", str(path), max_rows=3), on_bad_row="skip")
    assert [c.id for c in ds.conversations] == ["1", "2", "4"]
    assert [e.where for e in ds.skipped] == [f"{path}:2", f"{path}:4"]
    assert "skipped 2 bad row(s)" in caplog.text
    assert f"{path}:4: conversations: no turns" in ds.skipped_report()


def test_no_valid_rows_or_bad_policy_is_an_error(tmp_path: Path) -> None:
    path = _file(tmp_path, ["{oops"])
    with pytest.raises(VlitError, match="no valid rows"):
        load_dataset(DatasetConfig("d", str(path)), on_bad_row="skip")
    with pytest.raises(VlitError, match="on_bad_row"):
        load_dataset(DatasetConfig("d", str(path)), on_bad_row="ignore")


def test_merge_qa_groups_rows_of_one_image(tmp_path: Path) -> None:
    ds = load_dataset(DatasetConfig("d", str(_file(tmp_path, ROWS))), merge_qa=True)
    assert ds.groups == [[0, 2, 4], [1], [3]]
    merged = ds.get(0)
    assert [t.content for t in merged.turns] == ["<image>\nColour?", "Red.", "Shape?", "Square.", "How many?",
                                                 "Two."]
    assert merged.images == ["a.png"] and merged.id == "1" and merged.meta["merged_ids"] == ["1", "3", "5"]
    merged.check()
    assert ds.get(1).id == "2" and ds.get(2).images == []


def test_merge_keeps_apart_other_datasets_systems_and_multi_turn_rows() -> None:
    multi = {"id": "m", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"},
        {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]}
    system = {"id": "s", "image": "a.png", "conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "human", "value": "<image>\nq"},
        {"from": "gpt", "value": "a"}]}
    rows = [_qa("1", "a.png", "<image>\nq", "a", dataset="x"), _qa("2", "a.png", "<image>\nq", "b", dataset="y"),
            multi, system, _qa("3", "a.png", "<image>\nq", "c", dataset="x")]
    convs = [parse_row(r, f"r[{i}]") for i, r in enumerate(rows)]
    assert qa_groups(convs) == [[0, 4], [1], [2], [3]]
    merged = merge_conversations([convs[0], convs[4]])
    assert merged.num_image_markers == 1 and merged.turns[2].content == "q"


def test_load_mixture_applies_policy_seed_and_merge(tmp_path: Path) -> None:
    a, b = _file(tmp_path, ROWS, "a.jsonl"), _file(tmp_path, [ROWS[3], "{bad"], "b.jsonl")
    cfg = MixtureConfig([DatasetConfig("a", a.name), DatasetConfig("b", b.name)], merge_qa=True,
                        on_bad_row="skip", seed=9)
    loaded = load_mixture(cfg, root=tmp_path)
    assert list(loaded) == ["a", "b"] and len(loaded["a"]) == 3 and len(loaded["b"]) == 1
    assert loaded["a"].seed == 9 and len(loaded["b"].skipped) == 1


def test_restyle_is_lazy_and_seeded(tmp_path: Path) -> None:
    from vlit.data.sources import build as built

    out = tmp_path / "qs"
    built.build_quickstart(out, seed=0, scale=0.05)
    files = sorted(p for p in out.rglob("*.json*") if "question" not in p.name)
    assert files, "build_quickstart wrote no conversation file"
    cfg = DatasetConfig("qs", str(files[0]), style="instructblip")
    first, second = load_dataset(cfg, rng_seed=1), load_dataset(cfg, rng_seed=1)
    n = min(len(first), 20)
    assert [first.get(i, 0) for i in range(n)] == [second.get(i, 0) for i in range(n)]
    epochs = [[first.get(i, e).turns[0].content for i in range(n)] for e in range(4)]
    assert any(epochs[0] != other for other in epochs[1:]), "templates never change across epochs"


def _refer_row(row_id: str, box: list[float]) -> dict:
    task = {"type": "refer", "phrase": "the red circle", "boxes": [box], "image_size": [200, 100]}
    return _qa(row_id, "a.png", "<image>\nWhere?", "here", task=task)


def test_restyled_boxes_follow_the_model_input(tmp_path: Path, caplog) -> None:
    from vlit.data.loading.transforms import ImageSpec

    path = _file(tmp_path, [_refer_row("in", [24, 30, 110, 90]), _refer_row("out", [2, 10, 40, 50])])
    cfg = DatasetConfig("shapes", str(path), style="minigptv2")
    assert load_dataset(cfg).get(1).turns[-1].content == "{<1><10><20><50>}"  # original frame, as before
    pad = load_dataset(cfg, image_spec=ImageSpec(100, (0.5,) * 3, (0.5,) * 3, "pad"))
    assert [pad.get(i).turns[-1].content for i in range(2)] == ["{<12><40><55><70>}", "{<1><30><20><50>}"]
    with caplog.at_level(logging.WARNING):
        mixture = load_mixture(MixtureConfig([cfg]), image_spec=ImageSpec(100, (0.5,) * 3, (0.5,) * 3, "crop"))
    crop = mixture["shapes"]
    assert len(crop) == 1 and crop.get(0).id == "in"
    assert crop.get(0).turns[-1].content == "{<0><30><60><90>}"  # cut by the crop: clipped
    (record,) = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert "shapes" in record.getMessage() and "row out" in record.getMessage()
    assert "falls outside" in record.getMessage()


def test_a_merged_row_renders_all_its_records_and_drops_whole_when_a_crop_loses_a_box(tmp_path: Path,
                                                                                        caplog) -> None:
    from vlit.data.loading.transforms import ImageSpec

    inside = {"type": "refer", "phrase": "the circle", "boxes": [[24, 30, 110, 90]], "image_size": [200, 100]}
    lost = {**inside, "phrase": "the square", "boxes": [[2, 10, 40, 50]]}
    merged = {**_qa("m", "a.png", "<image>\nWhere?", "here"), "tasks": [inside, lost]}
    path = _file(tmp_path, [merged, _refer_row("in", [24, 30, 110, 90])])
    cfg = DatasetConfig("shapes", str(path), style="minigptv2")
    assert [t.content for t in load_dataset(cfg).get(0).turns] == [
        "<image>\n[refer] give me the location of the circle", "{<12><30><55><90>}",
        "[refer] give me the location of the square", "{<1><10><20><50>}"]
    with caplog.at_level(logging.WARNING):
        crop = load_dataset(cfg, image_spec=ImageSpec(100, (0.5,) * 3, (0.5,) * 3, "crop"))
    assert [crop.get(i).id for i in range(len(crop))] == ["in"]
    assert any("row m" in r.getMessage() and "falls outside" in r.getMessage() for r in caplog.records)


BAD_ROWS = [  # the kinds `vlit data validate` reports, each with the reason skip mode names it by
    ({"id": "b0", "image": "a.png"}, "conversations: missing"),
    ({"id": "b1", "image": "a.png", "conversations": "hi"}, "conversations: expected a list, got str"),
    ({"id": "b2", "image": "gone.png", "conversations": ROWS[0]["conversations"]},
     "image: {root}/gone.png: no such file"),
    ({"id": "b3", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
     "conversations[0].from: expected human, got gpt"),
    ({"id": "b4", "image": 5, "conversations": ROWS[0]["conversations"]},
     "image: expected a non-empty path or a non-empty list of paths, got 5"),
    ({"id": "b5", "conversations": [{"from": ["human"], "value": "x"}, {"from": "gpt", "value": "y"}]},
     "conversations[0].from: unknown role ['human'] (expected human, gpt or system)"),
    ({"id": "b6", "image": "special/zero.png", "conversations": ROWS[0]["conversations"]},
     "image: {root}/special/zero.png: not a regular file (a character device, via a link to /dev/zero)"),
    ({"id": "b7", "image": "special/fifo.png", "conversations": ROWS[0]["conversations"]},
     "image: {root}/special/fifo.png: not a regular file (a FIFO)"),
]


def test_skip_trains_on_the_good_rows_of_a_mostly_bad_file(tmp_path: Path, special_files,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    good = [ROWS[i % len(ROWS)] | {"id": f"g{i}"} for i in range(6)]
    rows = [row for pair in zip(good + [None, None], [r for r, _ in BAD_ROWS], strict=True) for row in pair
            if row is not None]
    path = _file(tmp_path, rows, "d.json")
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(DatasetConfig("d", path.name), root=tmp_path, on_bad_row="skip")
    assert [c.id for c in ds.conversations] == [f"g{i}" for i in range(6)]
    lines = [f"{path}:{2 * i + 2 if i < 6 else 13 + i - 6}: {reason.format(root=tmp_path)}"
             for i, (_, reason) in enumerate(BAD_ROWS)]
    assert [str(e) for e in ds.skipped] == lines
    logged = [r.getMessage() for r in caplog.records]
    assert logged[:8] == [f"d: {line} (row skipped)" for line in lines]
    assert logged[8] == (f"d: skipped 8 bad row(s) (image: 3, missing: 1, order: 1, role: 1, type: 2) of {path}, "
                         "6 kept")


def test_fail_mode_does_not_stat_images_at_load(tmp_path: Path) -> None:
    path = _file(tmp_path, [ROWS[0] | {"image": "gone.png"}])
    assert len(load_dataset(DatasetConfig("d", str(path)), on_bad_row="fail")) == 1  # found when it is encoded


def test_a_data_file_that_is_no_regular_file_is_refused(special_files) -> None:
    for path, reason in special_files.items():
        with pytest.raises(VlitError) as caught:
            load_dataset(DatasetConfig("d", str(path)), on_bad_row="skip")
        assert str(caught.value) == f"{path}: {reason}"
