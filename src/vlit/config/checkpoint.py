"""A checkpoint's model config as plain data, and a recipe's model section laid over it (`model.init_from`).

Kept beside the configs (not with the models) because a recipe is resolved before any model exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlit.config.loader import ConfigError

CONFIG_FILE = "config.json"
RELATIVE = "./"
"""A part name starting with this is relative to the checkpoint folder (`vlit import --copy` writes them)."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file (a checkpoint's or a published model's config.json); errors name the file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def checkpoint_meta(folder: str | Path) -> dict[str, Any]:
    """The whole config.json of a checkpoint folder, its model section migrated and its relative names made
    absolute."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.exists():
        raise ConfigError(f"{folder}: not a vlit checkpoint (no {CONFIG_FILE})")
    meta = read_json(path)
    model = meta.get("model")
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: no model section (not a vlit checkpoint)")
    if "prompt_style" not in model and "prompt_style" in meta:
        # Written before the model config held the style: it was a top-level guess from the training data.
        model = {**model, "prompt_style": meta["prompt_style"]}
    meta["model"] = _absolute(model, folder.resolve())
    return meta


def _absolute(model: dict[str, Any], folder: Path) -> dict[str, Any]:
    out = dict(model)
    for section, key in (("vision", "name"), ("llm", "name"), ("llm", "tokenizer"), ("connector", "tokenizer")):
        part = out.get(section)
        if isinstance(part, dict) and isinstance(part.get(key), str) and part[key].startswith(RELATIVE):
            out[section] = {**part, key: str(folder / part[key][len(RELATIVE):])}
    return out


def with_init_from(model: dict[str, Any]) -> dict[str, Any]:
    """A recipe's model section over the model config of its `init_from` checkpoint: what the recipe states
    wins, field by field (a connector of another kind replaces the checkpoint's whole)."""
    folder = model.get("init_from")
    if not folder:
        return model
    try:
        base = checkpoint_meta(folder)["model"]
    except ConfigError as e:
        raise ConfigError(f"model.init_from: {e}; `vlit import` a published model there first") from None
    return {**_merge(base, model), "init_from": str(folder)}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        same_kind = not (isinstance(old, dict) and isinstance(value, dict) and "kind" in value
                         and value["kind"] != old.get("kind"))
        out[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) and same_kind else value
    return out
