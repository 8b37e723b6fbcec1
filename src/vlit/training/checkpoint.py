"""Training checkpoints: everything a resumed run needs to continue exactly where it stopped.

A checkpoint folder holds the model (a loadable vlit checkpoint under `model/`), the optimizer and RNG
tensors as safetensors (never pickles), and the scheduler, data position and counters as JSON. It is written
under a temporary name, its manifest (sizes and SHA-256, `vlit.manifest`) last, and renamed into place, so a run
killed mid-write, or a disk that fills, leaves the previous one intact. Resuming checks the manifests and falls back
past a damaged checkpoint to the newest sound one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlit.disk import read_safetensors, save_safetensors, write_failed
from vlit.errors import VlitError
from vlit.manifest import MANIFEST_FILE, DamagedFolder, fsync, verify_manifest, write_manifest
from vlit.models.saving import WEIGHTS_FILE, load_weights, read_checkpoint_config, save_model
from vlit.models.vlm import VisionLanguageModel

log = logging.getLogger(__name__)

PREFIX = "step-"
STATE_FILE = "trainer_state.json"
FILES = [f"model/{MANIFEST_FILE}", "optimizer.safetensors", "optimizer.json", "rng.safetensors", STATE_FILE]
"""What a checkpoint's manifest lists; `model/` has its own manifest, listed here by its hash."""
HEADS_FILE = "heads.safetensors"
"""A stage objective's training-only weights (a `qformer` stage's heads), in each checkpoint of that stage: they are
no part of the model. Mid-stage, resuming needs them; at the stage's end nothing in training reads them again, but
they score image-text pairs (ITC, ITM) with the model of that checkpoint."""


def gather_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The full optimizer state of a model sharded by FSDP, each moment gathered whole on the CPU and keyed by its
    parameter's name (a collective: every process calls it). Each process holds only its shard of every moment,
    as a DTensor that safetensors cannot write."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True,
                                                                               cpu_offload=True))


def write_optimizer(folder: Path, state: dict[str, Any]) -> None:
    """An optimizer state dict into `folder` as flat tensors `KEY.SLOT` (optimizer.safetensors) and JSON; KEY is
    a parameter's index in the optimizer (`optimizer.state_dict()`) or, for a state gathered from FSDP shards,
    its name (`gather_optimizer`)."""
    tensors = {f"{key}.{name}": value for key, slots in state["state"].items()
               for name, value in slots.items() if torch.is_tensor(value)}
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
              for g in state["param_groups"]]
    by_name = any(isinstance(key, str) for key in state["state"])
    save_safetensors(tensors, folder / "optimizer.safetensors")
    (folder / "optimizer.json").write_text(json.dumps({"param_groups": groups, "indices": sorted(state["state"]),
                                                       "keys": "name" if by_name else "index"}))


def _read_optimizer(folder: Path) -> tuple[dict[str, Any], bool]:
    """The optimizer state dict a checkpoint saved, and whether it is keyed by parameter name (gathered from FSDP
    shards)."""
    tensors = read_safetensors(folder / "optimizer.safetensors")
    meta = _read_json(folder / "optimizer.json")
    by_name = meta.get("keys") == "name"
    state: dict[int | str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        param, name = key.rsplit(".", 1)  # a parameter's name has dots; a slot's (exp_avg, step) none
        state.setdefault(param if by_name else int(param), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}, by_name


def load_optimizer(optimizer: torch.optim.Optimizer, folder: Path, model: torch.nn.Module | None = None) -> None:
    """The state `write_optimizer` wrote into `optimizer`; one gathered from FSDP shards (keyed by the names of
    `model`'s parameters) goes into `model`'s shards when it is sharded (a collective), else whole, so a run
    sharded by FSDP also resumes on one process."""
    state, by_name = _read_optimizer(folder)
    if not by_name:
        optimizer.load_state_dict(state)
        return
    if model is None:
        raise ValueError("load_optimizer: a state keyed by parameter name needs the model those names are in")
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    # Every process read the whole state; each keeps its own shards of it.
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


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
                    state: dict[str, torch.Tensor] | None = None,
                    heads: dict[str, torch.Tensor] | None = None,
                    optimizer_state: dict[str, Any] | None = None) -> Path:
    """Write `run_dir/checkpoints/step-N` atomically and keep only the newest `keep_last`; `state`: the full
    weights when the model's own are sharded; `heads`: the stage objective's weights (`HEADS_FILE`);
    `optimizer_state`: the optimizer's state gathered from FSDP shards (`gather_optimizer`). A failed
    write (a full disk, a read-only folder) removes its temporary folder and is one line saying what to do; the
    checkpoints before it are untouched."""
    root = run_dir / "checkpoints"
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".{final.name}.tmp"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        save_model(model, tmp / "model", trained=trained, state=state)
        write_optimizer(tmp, optimizer_state if optimizer_state is not None else optimizer.state_dict())
        rng_tensors, rng_plain = rng_state()
        save_safetensors(rng_tensors, tmp / "rng.safetensors")
        state = {**trainer_state, "rng": rng_plain, "scheduler": scheduler.state_dict(), "trained": trained}
        (tmp / STATE_FILE).write_text(json.dumps(state))
        if heads is not None:
            save_safetensors(heads, tmp / HEADS_FILE)
        write_manifest(tmp, FILES + ([HEADS_FILE] if heads is not None else []))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync(root)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(run_dir)
        then = (f"rerun with --resume: it continues from {previous.name}, which is untouched" if previous
                else "rerun (no earlier checkpoint to resume from)")
        raise write_failed("the checkpoint", final, e, then, scratch=tmp) from None
    for old in sorted(p for p in root.glob(f"{PREFIX}*") if p.is_dir())[:-keep_last]:
        try:
            shutil.rmtree(old)
        except OSError as e:  # the new checkpoint is in place: an old one left behind costs space, not work
            log.warning("%s: cannot remove this old checkpoint (%s); training goes on", old, e.strerror)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (temporary folders of a killed write are ignored)."""
    found = _complete(run_dir)
    return found[-1] if found else None


def _complete(run_dir: Path) -> list[Path]:
    return sorted(p for p in (run_dir / "checkpoints").glob(f"{PREFIX}*") if (p / STATE_FILE).exists())


def verify_checkpoint(folder: Path) -> None:
    """Check a checkpoint against its manifests (its own and its model's); `DamagedFolder` names the first file
    missing, cut short or changed. One written before manifests existed is only checked for its files."""
    if verify_manifest(folder):
        verify_manifest(folder / "model")
        return
    log.debug("%s: no %s (written before vlit wrote manifests); resuming from it unverified", folder, MANIFEST_FILE)
    for name in ("model/config.json", f"model/{WEIGHTS_FILE}", *FILES[1:]):
        if not (folder / name).is_file():
            raise DamagedFolder(folder / name, "missing")


def resume_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that verifies, each newer damaged one skipped with a warning naming its file and
    fault; None when the run has none yet. A run whose checkpoints are all damaged is one line naming each."""
    faults = []
    for folder in reversed(_complete(run_dir)):
        try:
            verify_checkpoint(folder)
        except DamagedFolder as e:
            log.warning("%s; checkpoint %s is damaged, trying the one before it", e, folder.name)
            faults.append(str(e))
            continue
        if faults:
            log.warning("resuming from %s, the newest checkpoint that verifies", folder.name)
        return folder
    if faults:
        raise VlitError(f"{run_dir / 'checkpoints'}: no checkpoint to resume from verifies ({'; '.join(faults)}); "
                        "train afresh without --resume, or into another --out")
    return None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise VlitError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VlitError(f"{path}: unreadable ({e})") from None


def read_trainer_state(folder: Path) -> dict:
    return _read_json(folder / STATE_FILE)


def restore_model(folder: Path, model: VisionLanguageModel) -> None:
    _, meta = read_checkpoint_config(folder / "model")
    load_weights(model, folder / "model" / WEIGHTS_FILE, meta["stored_parts"])


def restore_heads(folder: Path, heads: torch.nn.Module) -> None:
    """A stage objective's weights from a mid-stage checkpoint; one that lacks them cannot continue the stage."""
    if not (folder / HEADS_FILE).is_file():
        raise VlitError(f"{folder / HEADS_FILE}: missing; this checkpoint was taken mid-stage without the stage's "
                        "heads and cannot continue it exactly")
    heads.load_state_dict(read_safetensors(folder / HEADS_FILE))


def restore_training(folder: Path, optimizer: torch.optim.Optimizer | None, scheduler: Any | None,
                     model: torch.nn.Module | None = None) -> dict:
    """RNG states from a checkpoint; with a scheduler also its state, and with an optimizer its state too
    (`model`: the model its parameters are in, for a state gathered from FSDP shards); returns the trainer
    state. A scheduler without an optimizer (DeepSpeed, whose moments restart) still sets the learning rates
    where the schedule stopped."""
    state = read_trainer_state(folder)
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
        if optimizer is not None:
            load_optimizer(optimizer, folder, model)
        else:
            for group, lr in zip(scheduler.optimizer.param_groups, scheduler.get_last_lr(), strict=True):
                group["lr"] = lr
    set_rng_state(read_safetensors(folder / "rng.safetensors"), state["rng"])
    return state
