from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from vlit.data.conversation import Conversation
from vlit.errors import VlitError
from vlit.models.saving import load_model, save_model


def test_save_load_gives_identical_logits(tmp_path, debug_model, red_image):
    model, processor = debug_model
    with torch.no_grad():
        for p in model.connector.parameters():
            p.add_(torch.randn_like(p))  # "trained": differs from a fresh build
    save_model(model, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    # Random parts cannot be rebuilt from a hub name, so they are stored; so are the connector and LoRA.
    assert meta["stored_parts"] == ["vision", "connector", "llm", "lora"]
    assert not list(tmp_path.glob("ckpt/*.bin")) and not list(tmp_path.glob("ckpt/*.pt"))
    loaded, loaded_processor = load_model(tmp_path / "ckpt")
    batch = processor([Conversation.single("What colour?", "Red.", image=red_image)])
    inputs = {k: getattr(batch, k) for k in ("input_ids", "attention_mask", "pixel_values", "labels")}
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)
    assert loaded_processor.render(Conversation.single("x")) == processor.render(Conversation.single("x"))


def test_only_trained_and_unbuildable_parts_are_stored(tmp_path, debug_config):
    from dataclasses import replace

    from vlit.config import LLMConfig
    from vlit.models.build import build_model

    model, _ = build_model(replace(debug_config.model, llm=LLMConfig()))  # packaged SmolLM2: rebuildable
    save_model(model, tmp_path / "ckpt")
    keys = load_file(tmp_path / "ckpt" / "model.safetensors").keys()
    assert {"lora" if "lora_" in k else k.split(".")[0] for k in keys} == {"vision", "connector", "lora"}
    model.llm.requires_grad_(True)  # a stage that trains the LLM stores it too
    save_model(model, tmp_path / "ckpt2")
    meta = json.loads((tmp_path / "ckpt2" / "config.json").read_text())
    assert meta["stored_parts"] == ["vision", "connector", "llm", "lora"]


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(VlitError, match="not a vlit checkpoint"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(VlitError, match="config.json: not valid JSON"):
        load_model(tmp_path)


def test_an_older_checkpoint_keeps_its_prompt_style(tmp_path):
    from vlit.config import ModelConfig, to_dict
    from vlit.models.saving import read_checkpoint_config

    model = to_dict(ModelConfig())
    del model["prompt_style"]  # written before the model config held it: a top-level guess instead
    (tmp_path / "config.json").write_text(json.dumps({"model": model, "prompt_style": "minigptv2"}))
    cfg, meta = read_checkpoint_config(tmp_path)
    assert cfg.prompt_style == "minigptv2"
    model["prompt_style"] = "instructblip"  # a config that states it wins
    (tmp_path / "config.json").write_text(json.dumps({"model": model, "prompt_style": "minigptv2"}))
    assert read_checkpoint_config(tmp_path)[0].prompt_style == "instructblip"


def test_checkpoint_holds_its_prompt_as_a_jinja_chat_template(tmp_path, checkpoint, debug_model, debug_config):
    """`chat_template.jinja` renders transformers-style messages as the model's processor renders them, its
    configured system prompt included."""
    from dataclasses import replace

    from vlit.models.saving import write_checkpoint

    _, processor = debug_model
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    conversation = Conversation.single("What colour?", image="x.png")

    def render(folder):
        jinja = (folder / "chat_template.jinja").read_text(encoding="utf-8")
        return processor.tokenizer.apply_chat_template(messages, chat_template=jinja, tokenize=False,
                                                       add_generation_prompt=True)

    assert render(checkpoint) == processor.render(conversation, add_generation_prompt=True)
    cfg = replace(debug_config.model, template="vicuna_v1", system_prompt="Réponds brièvement.")
    write_checkpoint(tmp_path / "vicuna", cfg, {}, [])
    assert render(tmp_path / "vicuna") == "Réponds brièvement. USER: <image>\nWhat colour? ASSISTANT:"


def _flip_a_bit(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


def test_a_model_folder_carries_a_manifest_of_its_files(checkpoint):
    from vlit.manifest import verify_manifest

    files = json.loads((checkpoint / "manifest.json").read_text())["files"]
    assert set(files) == {"model.safetensors", "config.json", "chat_template.jinja"}
    assert files["model.safetensors"]["size"] == (checkpoint / "model.safetensors").stat().st_size
    assert verify_manifest(checkpoint)


@pytest.mark.parametrize("damage, reason", [
    (lambda f: _flip_a_bit(f / "model.safetensors", (f / "model.safetensors").stat().st_size // 2),
     r"model.safetensors: changed since it was written \(SHA-256 differs from manifest.json\)"),
    (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:4096]),
     r"model.safetensors: truncated: 4,096 bytes"),
    (lambda f: (f / "model.safetensors").unlink(), r"model.safetensors: missing \(listed in manifest.json\)"),
    (lambda f: (f / "config.json").write_text((f / "config.json").read_text().replace("chatml", "vicuna_v1")),
     r"config.json: (changed since it was written|\d[\d,]* bytes)"),
], ids=["bit flip", "truncated", "missing", "edited config"])
def test_a_damaged_model_folder_is_named_by_every_loader(tmp_path, checkpoint, debug_model, damage, reason):
    import shutil

    from vlit.models.saving import load_init, load_part

    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint, folder)
    damage(folder)
    model, _ = debug_model
    for load in (lambda: load_model(folder), lambda: load_init(model, folder),
                 lambda: load_part(model, "connector", folder)):
        with pytest.raises(VlitError, match=rf"^{folder}/{reason}.*a damaged checkpoint"):
            load()


def test_a_damaged_model_folder_is_one_line_at_the_cli(tmp_path, checkpoint, red_image, capsys):
    import shutil

    from vlit.cli import main as cli

    folder = tmp_path / "model"
    shutil.copytree(checkpoint, folder)
    _flip_a_bit(folder / "model.safetensors", 1000)
    red_image.save(tmp_path / "red.png")
    for argv in (["info", str(folder)], ["ask", "--checkpoint", str(folder), "--image", str(tmp_path / "red.png"),
                                         "What?"], ["export", "--checkpoint", str(folder), "--out", str(tmp_path)]):
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{folder}/model.safetensors: changed since it was written" in err


def test_a_folder_written_before_manifests_loads_with_a_debug_note(tmp_path, checkpoint, caplog):
    import logging
    import shutil

    folder = tmp_path / "old"
    shutil.copytree(checkpoint, folder)
    (folder / "manifest.json").unlink()
    with caplog.at_level(logging.DEBUG, logger="vlit.models.saving"):
        load_model(folder)
    notes = [r for r in caplog.records if r.name == "vlit.models.saving"]
    assert [r.levelno for r in notes] == [logging.DEBUG] and "no manifest.json" in notes[0].getMessage()


def test_a_write_cut_short_by_a_full_disk_is_refused_on_load(tmp_path, debug_model, monkeypatch):
    import errno

    import safetensors.torch

    def full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\0" * 100)  # what got out before the disk filled
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OSError, match="No space left"):
        save_model(debug_model[0], tmp_path / "ckpt")
    monkeypatch.undo()
    with pytest.raises(VlitError, match=r"ckpt: written only in part"):
        load_model(tmp_path / "ckpt")
