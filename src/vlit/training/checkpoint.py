"""Training checkpoints: everything a resumed run needs to continue exactly where it stopped.

A checkpoint folder holds the model (a loadable vlit checkpoint under `model/`), the optimizer and RNG
tensors as safetensors (never pickles), and the scheduler, data position and counters as JSON. It is written
under a temporary name and renamed into place, so a run killed mid-write leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vlit.models.saving import load_weights, read_checkpoint_config, save_model
from vlit.models.vlm import VisionLanguageModel

PREFIX = "step-"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors = {f"{index}.{name}": value for index, slots in state["state"].items()
               for name, value in slots.items() if torch.is_tensor(value)}
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
              for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "indices": sorted(state["state"])}


def _load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    tensors = load_file(folder / "optimizer.safetensors")
    meta = json.loads((folder / "optimizer.json").read_text())
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    np_state = np.random.get_state()
    return tensors, {"python": random.getstate(),
                     "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}


def set_rng_state(tensors: dict[str, torch.Tensor], plain: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, state, gauss = plain["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, *rest = plain["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))


def save_checkpoint(run_dir: Path, step: int, model: VisionLanguageModel, optimizer: torch.optim.Optimizer,
                    scheduler: Any, trainer_state: dict, trained: list[str], keep_last: int,
                    state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write `run_dir/checkpoints/step-N` atomically and keep only the newest `keep_last`; `state`: the full
    weights when the model's own are sharded."""
    root = run_dir / "checkpoints"
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp / "model", trained=trained, state=state)
    tensors, meta = _optimizer_tensors(optimizer)
    save_file(tensors, tmp / "optimizer.safetensors")
    (tmp / "optimizer.json").write_text(json.dumps(meta))
    rng_tensors, rng_plain = rng_state()
    save_file(rng_tensors, tmp / "rng.safetensors")
    state = {**trainer_state, "rng": rng_plain, "scheduler": scheduler.state_dict(), "trained": trained}
    (tmp / "trainer_state.json").write_text(json.dumps(state))
    _fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted(p for p in root.glob(f"{PREFIX}*") if p.is_dir())[:-keep_last]:
        shutil.rmtree(old)
    return final


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (temporary folders of a killed write are ignored)."""
    found = sorted(p for p in (run_dir / "checkpoints").glob(f"{PREFIX}*") if (p / "trainer_state.json").exists())
    return found[-1] if found else None


def read_trainer_state(folder: Path) -> dict:
    return json.loads((folder / "trainer_state.json").read_text())


def restore_model(folder: Path, model: VisionLanguageModel) -> None:
    _, meta = read_checkpoint_config(folder / "model")
    load_weights(model, folder / "model" / "model.safetensors", meta["stored_parts"])


def restore_training(folder: Path, optimizer: torch.optim.Optimizer | None, scheduler: Any) -> dict:
    """RNG states from a checkpoint, and with an optimizer also its and the scheduler's states; returns the
    trainer state."""
    state = read_trainer_state(folder)
    if optimizer is not None:
        _load_optimizer(optimizer, folder)
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(load_file(folder / "rng.safetensors"), state["rng"])
    return state
