"""What every published layout's converter shares: reading a folder's config.json and preprocessor, the
image resize rule a processor implies, and the check that a checkpoint's weights are all accounted for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vlit.config.checkpoint import read_json
from vlit.errors import VlitError

__all__ = ["check_covered", "check_image_token", "dtype_of", "name_keys", "preprocessor", "read_json", "resize_rule"]

DTYPE_NAMES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def preprocessor(folder: Path) -> dict[str, Any]:
    """The image processor's settings (`preprocessor_config.json`, or the `image_processor` entry of a
    `processor_config.json` as transformers 5 writes it); {} when there is none."""
    if (folder / "preprocessor_config.json").exists():
        return read_json(folder / "preprocessor_config.json")
    if (folder / "processor_config.json").exists():
        return read_json(folder / "processor_config.json").get("image_processor", {})
    return {}


def resize_rule(processor: dict[str, Any]) -> str:
    """vlit's `vision.resize` for an image processor: LLaVA-1.5's pad, CLIP's resize-and-crop, else stretch."""
    if processor.get("do_pad") and "llava" in str(processor.get("image_processor_type", "")).lower():
        return "pad"
    if processor.get("do_center_crop"):
        return "crop"
    return "stretch"


def dtype_of(config: dict[str, Any], override: str | None) -> str:
    """The LLM dtype: the user's, else the checkpoint's own (float16 read as bfloat16: vlit trains in bf16)."""
    if override is not None:
        return override
    text = config.get("text_config") or {}
    name = str(text.get("dtype") or text.get("torch_dtype") or config.get("dtype") or config.get("torch_dtype"))
    return {"float16": "bfloat16"}.get(name, DTYPE_NAMES.get(name, "float32"))


def name_keys(keys: list[str]) -> str:
    """The first three weight names and how many more: what an error shows of a long list."""
    more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    return ", ".join(keys[:3]) + more


def check_covered(source: Path, names: list[str], owners: dict[str, str]) -> None:
    """Every weight of `source` belongs to a known part (regex -> part); any other is an error naming it."""
    unknown = [n for n in names if not any(re.match(pattern, n) for pattern in owners)]
    if unknown:
        raise VlitError(f"{source}: unexpected weights for this layout: {name_keys(unknown)}")


def check_image_token(source: Path, index: int) -> None:
    """The folder's image token id must be vlit's `<image>` in its tokenizer, so that id is reused unchanged."""
    from transformers import AutoTokenizer

    from vlit.data.conversation import IMAGE_TOKEN

    token = AutoTokenizer.from_pretrained(source, trust_remote_code=False).convert_ids_to_tokens(int(index))
    if token != IMAGE_TOKEN:
        raise VlitError(f"{source}: image token id {index} is {token!r}, not {IMAGE_TOKEN!r}")
