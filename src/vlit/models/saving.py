"""Checkpoint folders: `config.json` (the model config and which parts are stored) and `model.safetensors`
holding only what cannot be rebuilt: trained parts, the connector, LoRA adapters and randomly initialised
parts. Loading rebuilds the model from the config and its referenced base parts, then loads those weights.
`chat_template.jinja` shows other tools the prompt; vlit never reads it. `manifest.json`, written last, holds each
file's size and SHA-256: loading checks it, so a damaged folder is named instead of loaded (folders written before
manifests existed load unchecked). Folders copied in by `vlit import --copy` (`base/`) are not listed: their
loaders check them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from vlit import __version__
from vlit.assets import load_tokenizer
from vlit.config import ConfigError, ModelConfig, from_dict, to_dict
from vlit.config.checkpoint import CONFIG_FILE, checkpoint_meta
from vlit.data.loading.processor import Processor
from vlit.data.prompting.chat_templates import model_jinja
from vlit.disk import read_safetensors, save_safetensors
from vlit.errors import VlitError
from vlit.manifest import MANIFEST_FILE, DamagedFolder, mark_unfinished, verify_manifest, write_manifest
from vlit.models.build import build_model
from vlit.models.parts import part_of, part_state, trainable_parts
from vlit.models.vlm import VisionLanguageModel

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
"""The prompt as a Jinja chat template, for users and tools (vlit itself rebuilds it from the model config)."""


def parts_to_store(model: VisionLanguageModel, trained: list[str] | None = None) -> list[str]:
    """The connector and LoRA adapters always; parts trained now or before (`trained`, which includes what a
    model started from a checkpoint took from it); random-init and stored parts."""
    cfg = model.config
    stored = {"connector", *trainable_parts(model), *(trained or [])}
    stored |= {part for part in ("vision", "llm") if getattr(cfg, part).source in ("random", "stored")}
    if cfg.lora is not None:
        stored.add("lora")
    return [p for p in ("vision", "connector", "llm", "lora") if p in stored]


def dedupe_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies, dropping names that alias an earlier tensor (tied embeddings = lm_head):
    safetensors refuses shared storage and load_state_dict re-ties them."""
    seen, out = set(), {}
    for name, t in tensors.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            out[name] = t.detach().contiguous().cpu()
    return out


def save_model(model: VisionLanguageModel, folder: str | Path, trained: list[str] | None = None,
               extra: dict | None = None, state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a checkpoint folder. `trained` names parts trained by earlier stages but frozen now; `state` is
    the full state dict when the model's own is sharded (FSDP, DeepSpeed ZeRO-3)."""
    parts = parts_to_store(model, trained)
    return write_checkpoint(folder, model.config, part_state(model, parts, state), parts, extra)


def write_checkpoint(folder: str | Path, cfg: ModelConfig, weights: dict[str, torch.Tensor], parts: list[str],
                     extra: dict | None = None) -> Path:
    """The files of a checkpoint folder: `weights` (vlit names, exactly the stored `parts`), config.json, the
    prompt's Jinja form, and last the manifest of the three. A failed write raises the `OSError` (callers know
    what the user can do about it).
    A model started from another checkpoint stores what it took from it, so `init_from` is not kept."""
    folder = Path(folder)
    mark_unfinished(folder)
    save_safetensors(dedupe_tensors(weights), folder / WEIGHTS_FILE, metadata={"format": "pt", "vlit": __version__})
    model = {**to_dict(cfg), "init_from": None}
    meta = {"vlit_version": __version__, "model": model, "stored_parts": list(parts), **(extra or {})}
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    # Only the LLM's own template needs its tokenizer: a named one is written without looking one up.
    tokenizer = load_tokenizer(cfg.llm) if cfg.template == "llm" else None
    (folder / CHAT_TEMPLATE_FILE).write_text(model_jinja(cfg, tokenizer), encoding="utf-8")
    write_manifest(folder, [WEIGHTS_FILE, CONFIG_FILE, CHAT_TEMPLATE_FILE])
    return folder


def verify_model_folder(folder: str | Path) -> None:
    """Check a checkpoint folder against its manifest before loading it; a damaged file is one line naming it."""
    folder = Path(folder)
    try:
        checked = verify_manifest(folder)
    except DamagedFolder as e:
        raise VlitError(f"{e} (a damaged checkpoint: write it again, or restore it from a copy)") from None
    if not checked:
        log.debug("%s: no %s (written before vlit wrote manifests); loading it unverified", folder, MANIFEST_FILE)


def read_checkpoint_config(folder: str | Path) -> tuple[ModelConfig, dict]:
    """The checkpoint's model config and its whole `config.json`."""
    meta = checkpoint_meta(folder)
    try:
        return from_dict(ModelConfig, meta["model"], "model"), meta
    except ConfigError as e:
        raise ConfigError(f"{Path(folder) / CONFIG_FILE}: {e}") from None


def load_weights(model: VisionLanguageModel, path: Path, parts: list[str] | set[str],
                 state: dict[str, torch.Tensor] | None = None) -> None:
    """Load the stored `parts` from a safetensors file (or `state`); every weight of those parts must be there,
    and nothing else. A connector of a related architecture is renamed by the connector (`adapt_state`: BLIP-2's
    Q-Former into an instruction-aware one), and the weights its pretrained init set (BERT's instruction
    embeddings, which BLIP-2 lacks) may be absent."""
    state = read_safetensors(path) if state is None else state
    connector = {k[len("connector."):]: v for k, v in state.items() if k.startswith("connector.")}
    state = {k: v for k, v in state.items() if not k.startswith("connector.")}
    state |= {f"connector.{k}": v for k, v in model.connector.adapt_state(connector).items()}
    expected = part_state(model, parts)
    allowed = _tied_names(model) | {f"connector.{k}" for k in model.connector.pretrained_keys}
    missing = [k for k in expected if k not in state and k not in allowed]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        raise VlitError(f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]}"
                        f"{f', wrong shape {shapes[:3]}' if shapes else ''})")
    model.load_state_dict(state, strict=False)


def load_init(model: VisionLanguageModel, folder: str | Path) -> list[str]:
    """Load every weight a checkpoint stores into `model` (a recipe's `model.init_from`); returns its stored
    parts, which the new checkpoint must store too (they cannot be rebuilt from a reference)."""
    folder = Path(folder)
    verify_model_folder(folder)
    meta = checkpoint_meta(folder)
    parts = [p for p in meta.get("stored_parts", []) if p != "lora" or model.config.lora is not None]
    state = read_safetensors(folder / WEIGHTS_FILE) if (folder / WEIGHTS_FILE).exists() else None
    if state is None:
        raise VlitError(f"{folder}: checkpoint has no {WEIGHTS_FILE}")
    state = {k: v for k, v in state.items() if part_of(k) in parts}
    load_weights(model, folder / WEIGHTS_FILE, parts, state)
    return parts


def load_part(model: VisionLanguageModel, part: str, source: str | Path) -> None:
    """One part from a vlit checkpoint folder, or the connector from a LLaVA stage-1 projector file
    (`mm_projector.bin`, what LLaVA's `--pretrain_mm_mlp_adapter` loads)."""
    source = Path(source)
    if source.is_dir():
        verify_model_folder(source)
        meta = checkpoint_meta(source)
        if part not in meta.get("stored_parts", []):
            raise VlitError(f"{source}: the checkpoint does not store the {part}")
        state = {k: v for k, v in read_safetensors(source / WEIGHTS_FILE).items() if part_of(k) == part}
        load_weights(model, source / WEIGHTS_FILE, [part], state)
        return
    if part != "connector":
        raise VlitError(f"{source}: a weights file loads into the connector only (a LLaVA projector), not the {part}")
    from vlit.models.published.files import read_state_dict
    from vlit.models.published.llava import projector_weights

    load_weights(model, source, ["connector"], projector_weights(read_state_dict(source), source))


def load_model(folder: str | Path) -> tuple[VisionLanguageModel, Processor]:
    """Rebuild a saved model: base parts from their sources, stored weights from the checkpoint."""
    folder = Path(folder)
    verify_model_folder(folder)
    cfg, meta = read_checkpoint_config(folder)
    model, processor = build_model(cfg)
    weights = folder / WEIGHTS_FILE
    if not weights.exists():
        raise VlitError(f"{folder}: checkpoint has no {WEIGHTS_FILE}")
    load_weights(model, weights, meta.get("stored_parts", []))
    # For use: no dropout anywhere (a Q-Former's would change every answer); a training stage sets its modes.
    return model.eval(), processor


def _tied_names(module: torch.nn.Module) -> set[str]:
    """Names that alias an earlier parameter (dropped on save, restored by the tie)."""
    seen, tied = set(), set()
    for name, p in module.named_parameters(remove_duplicate=False):
        if p.data_ptr() in seen:
            tied.add(name)
        seen.add(p.data_ptr())
    return tied

