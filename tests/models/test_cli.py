"""`vlit export` picks the transformers format from the model and says which."""

from __future__ import annotations

from vlit.models.build import build_model
from vlit.models.cli import export_main
from vlit.models.saving import save_model


def test_export_writes_a_llava_folder_for_an_mlp_model(checkpoint, tmp_path, capsys):
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "hf")]) == 0
    assert "exported LlavaForConditionalGeneration folder" in capsys.readouterr().out
    assert (tmp_path / "hf" / "chat_template.jinja").exists()


def test_export_writes_an_instructblip_folder_for_a_qformer_model(blip_model_config, tmp_path, capsys):
    model, _ = build_model(blip_model_config(True))
    save_model(model, tmp_path / "ckpt")
    assert export_main(["--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "hf")]) == 0
    assert "exported InstructBlipForConditionalGeneration folder" in capsys.readouterr().out
    assert (tmp_path / "hf" / "qformer_tokenizer").is_dir()
