"""`vlit import`: detect which published layout a source is, convert it, check the weights fit vlit's model,
and write an ordinary vlit checkpoint folder (config.json + model.safetensors)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import torch

from vlit.config import ModelConfig
from vlit.errors import VlitError
from vlit.models.published.common import read_json
from vlit.models.published.files import PICKLE_SUFFIXES, local_source, read_state_dict
from vlit.models.published.imported import Imported

LLAVA_ORIGINAL_TYPES = ("llava_llama", "llava_mistral", "llava_mpt")


def convert(source: str, dtype: str | None = None, vision: str | None = None, llm: str | None = None,
            eva: str | None = None) -> Imported:
    """The published checkpoint at `source` (hub id, folder or file) in vlit's terms; its format is detected
    from its files."""
    path = local_source(source)
    name = str(source) if not Path(source).exists() else str(path.resolve())
    if path.is_file():
        return _convert_file(path, dtype, vision, llm, eva)
    if not (path / "config.json").exists():
        projector = path / "mm_projector.bin"
        if projector.exists():
            return _convert_file(projector, dtype, vision, llm, eva)
        raise VlitError(f"{path}: no config.json; not a published checkpoint vlit knows")
    config = read_json(path / "config.json")
    model_type = config.get("model_type")
    if model_type == "llava":
        from vlit.models.published.llava import convert_llava_hf

        return convert_llava_hf(path, name, dtype)
    if model_type in LLAVA_ORIGINAL_TYPES or "mm_vision_tower" in config:
        from vlit.models.published.llava import convert_llava_original

        if not any(path.glob("*.safetensors")) and not any(path.glob("pytorch_model*.bin")) \
                and (path / "mm_projector.bin").exists():
            return _convert_file(path / "mm_projector.bin", dtype, vision, llm, eva)
        return convert_llava_original(path, name, dtype, vision)
    if model_type in ("instructblip", "blip-2"):
        from vlit.models.published.blip import convert_blip

        return convert_blip(path, name, dtype)
    raise VlitError(f"{path / 'config.json'}: model_type {model_type!r} is not a layout vlit imports (llava, "
                    "llava_llama, instructblip, blip-2; MiniGPT-v2 and LLaVA projectors as files)")


def _convert_file(path: Path, dtype: str | None, vision: str | None, llm: str | None,
                  eva: str | None) -> Imported:
    if path.suffix not in (*PICKLE_SUFFIXES, ".safetensors"):
        raise VlitError(f"{path}: not a weights file (.safetensors, {', '.join(PICKLE_SUFFIXES)})")
    state = read_state_dict(path)
    from vlit.models.published.llava import is_projector_file

    if is_projector_file(list(state)):
        return _convert_projector(path, state, dtype, vision, llm)
    from vlit.models.published.minigptv2 import looks_like_minigptv2

    if looks_like_minigptv2(list(state)):
        if not eva or not llm:
            raise VlitError(f"{path}: a MiniGPT-v2 checkpoint; give BLIP-2's EVA ViT-g with --eva and the "
                            "LLaMA-2-chat folder with --llm")
        from vlit.models.published.minigptv2 import convert_minigptv2

        return convert_minigptv2(path, eva, llm, **({"dtype": dtype} if dtype else {}))
    raise VlitError(f"{path}: neither a LLaVA projector (mm_projector.*) nor a MiniGPT-v2 checkpoint "
                    f"(llama_proj.* and LoRA); first keys: {', '.join(list(state)[:3])}")


def _convert_projector(path: Path, state: dict[str, torch.Tensor], dtype: str | None, vision: str | None,
                       llm: str | None) -> Imported:
    """A stage-1 projector with the tower and LLM it was trained between: from its folder's config.json
    (`mm_vision_tower`, and the LLM it started from) or from --vision / --llm."""
    from vlit.config import LLMConfig, MLPConnectorConfig, VisionConfig
    from vlit.models.published.llava import projector_weights

    config = read_json(path.parent / "config.json") if (path.parent / "config.json").exists() else {}
    tower = vision or config.get("mm_vision_tower")
    base = llm or config.get("_name_or_path")
    if not tower or not base:
        raise VlitError(f"{path}: a projector alone; give the CLIP tower (--vision) and the LLM (--llm) it "
                        "was trained with")
    weights = projector_weights(state, path)
    kind = "mlp" if "connector.linear_2.weight" in weights else "linear"
    cfg = ModelConfig(
        vision=VisionConfig(source="hub", name=str(tower), feature_layer=config.get("mm_vision_select_layer", -2),
                            drop_cls=config.get("mm_vision_select_feature", "patch") == "patch",
                            resize="pad" if config.get("image_aspect_ratio", "pad") == "pad" else "crop"),
        connector=MLPConnectorConfig(kind=kind), llm=LLMConfig(source="hub", name=str(base),
                                                               dtype=dtype or "float32"),
        template="vicuna_v1", prompt_style="llava15", split_at_images=True)
    return Imported("llava-projector", cfg, weights, ["connector"],
                    [f"stage-1 projector between {tower} and {base}; the LLM is the base one (stage 2 tunes it)"])


def check_fits(imported: Imported) -> None:
    """The connector weights are exactly those of vlit's connector for this config (names and shapes).

    Built on the meta device from the parts' configs alone: a 7B LLM is never loaded to check a projector.
    """
    from vlit.models.connectors import build_connector

    cfg = dataclasses.replace(imported.config, connector=dataclasses.replace(imported.config.connector))
    vision_dim, llm_dim = _dims(cfg)
    with torch.device("meta"):
        connector = build_connector(cfg.connector, vision_dim, llm_dim)
    expected = {f"connector.{k}": tuple(v.shape) for k, v in connector.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in imported.weights.items() if k.startswith("connector.")}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    if missing or unexpected or shapes:
        what = (f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(unexpected[:3])}"
                if unexpected else f"wrong shape {shapes[0]}: {got[shapes[0]]} vs {expected[shapes[0]]}")
        raise VlitError(f"{imported.format}: the connector weights do not fit vlit's connector ({what})")


def _dims(cfg: ModelConfig) -> tuple[int, int]:
    """The vision width and the LLM width, from the parts' configs."""
    from transformers import AutoConfig

    from vlit.models.llm import llm_config

    if cfg.vision.source in ("random", "stored"):
        vision = AutoConfig.for_model(cfg.vision.name, **cfg.vision.random_config)
    else:
        vision = AutoConfig.from_pretrained(cfg.vision.name)
    vision = getattr(vision, "vision_config", vision)
    if cfg.llm.source in ("random", "stored"):
        text = AutoConfig.for_model(cfg.llm.name, **cfg.llm.random_config)
    else:
        text = llm_config(cfg.llm)
    return vision.hidden_size, text.hidden_size


def import_checkpoint(source: str, out: str | Path, copy: bool = False, **options: str | None) -> Imported:
    """Convert `source` and write the vlit checkpoint folder `out`. With `copy`, the local folders the
    checkpoint references (tower, LLM) are copied into `out/base/` and referenced from there (`./base/...`,
    relative to the checkpoint), so the folder stands alone."""
    from vlit.disk import write_failed
    from vlit.models.saving import write_checkpoint

    imported = convert(source, **options)
    check_fits(imported)
    out = Path(out)
    try:
        if copy:
            imported.config = _copy_referenced(imported.config, out)
        write_checkpoint(out, imported.config, imported.weights, imported.parts,
                         extra={"imported_from": str(source), "imported_format": imported.format})
    except OSError as e:
        raise write_failed("the imported checkpoint", out, e, "run vlit import again") from None
    return imported


def _copy_referenced(cfg: ModelConfig, out: Path) -> ModelConfig:
    copies: dict[str, str] = {}

    def copied(name: str) -> str:
        if name not in copies:
            src = local_source(name)
            target = out / "base" / f"{len(copies)}-{src.name}"
            if not target.exists():
                shutil.copytree(src, target, symlinks=False)
            copies[name] = f"./base/{target.name}"
        return copies[name]

    vision, llm, connector = cfg.vision, cfg.llm, cfg.connector
    if vision.source == "hub":
        vision = dataclasses.replace(vision, name=copied(vision.name))
    if llm.source == "hub":
        llm = dataclasses.replace(llm, name=copied(llm.name),
                                  tokenizer=copied(llm.tokenizer) if llm.tokenizer else None)
    if getattr(connector, "tokenizer", None):
        tok = Path(connector.tokenizer)
        base = copied(str(tok.parent)) if (tok.parent / "config.json").exists() else None
        connector = dataclasses.replace(connector, tokenizer=f"{base}/{tok.name}" if base else copied(str(tok)))
    return dataclasses.replace(cfg, vision=vision, llm=llm, connector=connector)
