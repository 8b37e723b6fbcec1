"""Checkpoint folders: `config.json` (the model config and which parts are stored) and `model.safetensors`
holding only what cannot be rebuilt: trained parts, the connector, and randomly initialised parts. Loading
rebuilds the model from the config and its referenced base parts, then loads those weights on top."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vlit import __version__
from vlit.config import ModelConfig, from_dict, to_dict
from vlit.data.processor import Processor
from vlit.errors import VlitError
from vlit.models.build import PARTS, build_model
from vlit.models.vlm import VisionLanguageModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def parts_to_store(model: VisionLanguageModel) -> list[str]:
    """The connector always; any part with a trainable weight; any part built from random init."""
    cfg = model.config
    stored = []
    for part in PARTS:
        random_init = part != "connector" and getattr(cfg, part).source == "random"
        trained = any(p.requires_grad for p in getattr(model, part).parameters())
        if part == "connector" or random_init or trained:
            stored.append(part)
    return stored


def _dedupe(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Tied weights (embeddings = lm_head) share storage, which safetensors refuses; keep the first name,
    # load_state_dict re-ties them.
    seen, out = set(), {}
    for name, t in tensors.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            out[name] = t.detach().contiguous().cpu()
    return out


def save_model(model: VisionLanguageModel, folder: str | Path, extra: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = parts_to_store(model)
    state = {f"{part}.{k}": v for part in parts for k, v in getattr(model, part).state_dict().items()}
    save_file(_dedupe(state), folder / WEIGHTS_FILE, metadata={"format": "pt", "vlit": __version__})
    meta = {"vlit_version": __version__, "model": to_dict(model.config), "stored_parts": parts, **(extra or {})}
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def read_checkpoint_config(folder: str | Path) -> tuple[ModelConfig, dict]:
    path = Path(folder) / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise VlitError(f"{folder}: not a vlit checkpoint (no {CONFIG_FILE})") from None
    except json.JSONDecodeError as e:
        raise VlitError(f"{path}: not valid JSON ({e})") from None
    return from_dict(ModelConfig, meta.get("model"), "model"), meta


def load_model(folder: str | Path) -> tuple[VisionLanguageModel, Processor]:
    """Rebuild a saved model: base parts from their sources, stored weights from the checkpoint."""
    folder = Path(folder)
    cfg, meta = read_checkpoint_config(folder)
    model, processor = build_model(cfg)
    weights = folder / WEIGHTS_FILE
    if not weights.exists():
        raise VlitError(f"{folder}: checkpoint has no {WEIGHTS_FILE}")
    state = load_file(weights)
    for part in meta.get("stored_parts", []):
        own = {k.removeprefix(f"{part}."): v for k, v in state.items() if k.startswith(f"{part}.")}
        missing, unexpected = getattr(model, part).load_state_dict(own, strict=False)
        tied = _tied_names(getattr(model, part))
        missing = [k for k in missing if k not in tied]
        if missing or unexpected:
            raise VlitError(f"{weights}: {part} weights do not fit the model "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model, processor


def _tied_names(module: torch.nn.Module) -> set[str]:
    """Names that alias an earlier parameter (dropped on save, restored by the tie)."""
    seen, tied = set(), set()
    for name, p in module.named_parameters(remove_duplicate=False):
        if p.data_ptr() in seen:
            tied.add(name)
        seen.add(p.data_ptr())
    return tied
