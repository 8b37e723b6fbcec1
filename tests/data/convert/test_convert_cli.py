"""`vlit data convert` end to end: every training layout, in each style, into files `vlit data validate` accepts;
bad rows listed and counted; a held-out set refused with exit 2 and one line."""

from __future__ import annotations

import json

import pytest

from vlit.cli import main
from vlit.data.convert.sources import HELD_OUT

LAYOUTS = ("coco_caption", "textcaps", "vqav2", "okvqa", "vg_qa", "aokvqa", "ocrvqa", "gqa", "refcoco",
           "llava_instruct", "vqav2_qg", "okvqa_qg", "aokvqa_qg")
SOURCE_OF = {"vqav2_qg": "vqav2", "okvqa_qg": "okvqa", "aokvqa_qg": "aokvqa", "refcoco+": "refcoco",
             "refcocog": "refcoco"}
"""Sets read from another set's fixture release (the same files, another use or the same layout)."""


@pytest.mark.parametrize(("style", "merge"), [("instructblip", False), ("llava15", False), ("llava15", True),
                                               ("minigptv2", False)])
def test_every_layout_converts_into_rows_validate_accepts(releases, write_images, tmp_path, capsys, style, merge):
    names = [n for n in LAYOUTS if n not in HELD_OUT[style]]
    sets = [f"{n}={releases[SOURCE_OF.get(n, n)]}" for n in names]
    out = tmp_path / "out"
    assert main(["data", "convert", *sets, "--style", style, "--out", str(out)] + ["--merge-qa"] * merge) == 0
    printed = capsys.readouterr().out
    assert f"vqav2: {2 if merge else 3} rows from 3 examples; 1 bad row(s) skipped -> {out / 'vqav2.json'}" in printed
    questions = releases["vqav2"] / "v2_OpenEnded_mscoco_train2014_questions.json"
    assert f"  {questions}: questions[3].question: missing" in printed.splitlines()
    images = tmp_path / "images"
    for name in names:
        file = out / f"{name}.json"
        rows = json.loads(file.read_text())
        assert rows and all(r["dataset"] == name for r in rows)
        write_images(file, images)
        assert main(["data", "validate", str(file), "--images", str(images)]) == 0, capsys.readouterr().out
    assert "gqa" not in names if style == "instructblip" else "gqa" in names


def test_a_held_out_set_is_refused_with_one_line_and_nothing_written(releases, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["data", "convert", f"vqav2={releases['vqav2']}", f"gqa={releases['gqa']}",
                 "--style", "instructblip", "--out", str(out)])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err == ("vlit data: error: gqa: held out in InstructBLIP's split (evaluated zero-shot, never "
                            "trained on); not written into instructblip training data\n")
    assert captured.out == "" and not out.exists()
    assert main(["data", "convert", f"vizwiz={tmp_path}", "--style", "llava15", "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_bad_arguments_are_one_line(releases, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["data", "convert", str(releases["gqa"]), "--style", "llava15", "--out", out]) == 2
    assert capsys.readouterr().err.startswith("vlit data: error: NAME=PATH: expected NAME=PATH, got ")
    assert main(["data", "convert", f"gqa={releases['gqa']}", "--sample", "gqa=many", "--style", "llava15",
                 "--out", out]) == 2
    assert capsys.readouterr().err == "vlit data: error: --sample: expected a number of rows, got 'many'\n"
    assert main(["data", "convert", f"gqa={tmp_path / 'nowhere'}", "--style", "llava15", "--out", out]) == 2
    assert capsys.readouterr().err == f"vlit data: error: {tmp_path / 'nowhere'}: no such file or folder\n"


def test_a_merged_file_for_llava15_validates(releases, write_images, tmp_path, capsys):
    out = tmp_path / "academic.json"
    sets = [f"{n}={releases[n]}" for n in ("vqav2", "gqa", "refcoco", "aokvqa")]
    assert main(["data", "convert", *sets, "--style", "llava15", "--merge-qa", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["id"] for r in rows] == ["vqav2-1", "vqav2-3", "gqa-02930152", "refcoco-5_7_refer"] + \
        [f"aokvqa-22MexNkBPpdZGX6sxbxVBH#{k}" for k in range(4)]
    assert len(rows[2]["conversations"]) == 4 and len(rows[3]["conversations"]) == 8
    write_images(out, tmp_path)
    assert main(["data", "validate", str(out)]) == 0
    assert "8 rows, 8 good, 0 bad" in capsys.readouterr().out


@pytest.mark.parametrize(("recipe", "style", "folder", "extra"), [
    ("instructblip-data-mixture", "instructblip", "", []),
    ("llava15-665k-academic", "llava15", "academic", ["--merge-qa"]),
])
def test_the_hub_mixtures_load_what_convert_writes(releases, tmp_path, capsys, recipe, style, folder, extra):
    import yaml

    from vlit.config.data import DatasetConfig
    from vlit.config.loader import BUNDLED
    from vlit.data.loading.dataset import load_dataset

    stage = yaml.safe_load((BUNDLED / "hub" / f"{recipe}.yaml").read_text())["stages"][-1]
    datasets = [DatasetConfig(**d) for d in stage["data"]["datasets"]]
    names = [d.name for d in datasets]
    sets = [f"{n}={releases[SOURCE_OF.get(n, n)]}" for n in names]
    root = tmp_path / "root"
    assert main(["data", "convert", *sets, "--style", style, "--out", str(root / folder), *extra]) == 0
    capsys.readouterr()
    for cfg in datasets:
        loaded = load_dataset(cfg, root)
        assert len(loaded) > 0 and loaded.get(0).turns[-1].content.strip(), cfg.name
    assert stage["data"]["sampling"] == ("sqrt" if style == "instructblip" else "proportional")
