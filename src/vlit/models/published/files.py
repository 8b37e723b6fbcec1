"""Reading published weight files safely: safetensors (one file or an index of shards), and pickled `.bin` /
`.pth` files only through `torch.load(weights_only=True)`, which refuses anything but plain tensors and
containers. Every failure is one line naming the file."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from vlit.errors import VlitError

PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt")


def local_source(source: str | Path) -> Path:
    """A local folder or file as is; anything else is a hub id, downloaded (weights, configs, tokenizers)."""
    path = Path(source)
    if path.exists():
        return path
    if str(source).count("/") != 1 or str(source).startswith((".", "/")):
        raise VlitError(f"{source}: no such file or folder (and not a hub id owner/name)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(source)))
    except Exception as e:  # noqa: BLE001 - hub errors come in many classes; the user needs the one line
        raise VlitError(f"{source}: cannot download from the hub ({str(e).splitlines()[0]})") from None


def read_state_dict(path: str | Path, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a weights file or a folder's (sharded) weights, by name; with `keep`, only the names it
    accepts are read from safetensors (a 7B LLaVA's projector without reading the LLM)."""
    path = Path(path)
    if path.is_dir():
        return read_state_dict(weights_files(path), keep)
    if path.name.endswith(".index.json"):
        return read_indexed(path, keep)
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, "pt") as f:
                return {k: f.get_tensor(k) for k in f.keys() if keep is None or keep(k)}  # noqa: SIM118
        except (SafetensorError, OSError) as e:
            raise VlitError(f"{path}: not a safetensors file ({e})") from None
    if path.suffix in PICKLE_SUFFIXES:
        state = _read_pickle(path)
        return {k: v for k, v in state.items() if keep is None or keep(k)}
    raise VlitError(f"{path}: not a weights file (.safetensors, {', '.join(PICKLE_SUFFIXES)})")


def weights_files(folder: Path) -> Path:
    """The one weights file of a folder, or its shards merged through the index."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).exists():
            return folder / index
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).exists():
            return folder / name
    raise VlitError(f"{folder}: no model.safetensors or pytorch_model.bin")


def read_indexed(index: Path, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise VlitError(f"{index}: not a weights index ({e})") from None
    shards = sorted({shard for name, shard in weight_map.items() if keep is None or keep(name)})
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state |= read_state_dict(index.parent / shard, keep)
    return state


def weight_names(folder: Path) -> list[str]:
    """The weight names of a folder's checkpoint, without reading a tensor (safetensors or an index)."""
    path = weights_files(folder)
    if path.name.endswith(".index.json"):
        try:
            return sorted(json.loads(path.read_text())["weight_map"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise VlitError(f"{path}: not a weights index ({e})") from None
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, "pt") as f:
                return sorted(f.keys())
        except (SafetensorError, OSError) as e:
            raise VlitError(f"{path}: not a safetensors file ({e})") from None
    return sorted(read_state_dict(path))


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if str(e) else "unsupported object"
        raise VlitError(f"{path}: not plain tensors; vlit reads pickles only with weights_only=True "
                        f"({reason[:160]})") from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise VlitError(f"{path}: not a PyTorch weights file ({str(e).splitlines()[0][:160]})") from None
    # Training checkpoints wrap the weights: MiniGPT's {"model": ...}, others {"state_dict": ...}.
    for key in ("model", "state_dict", "module"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise VlitError(f"{path}: holds no state dict of tensors")
    return dict(data)
