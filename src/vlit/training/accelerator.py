"""The Accelerator a training run runs on: its mixed precision checked against the CPU, and DDP told that a
text-only batch leaves the connector without gradients."""

from __future__ import annotations

import logging

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs

from vlit.config import Config
from vlit.errors import VlitError
from vlit.models.llm import bf16_is_emulated

log = logging.getLogger(__name__)


def make_accelerator(cfg: Config) -> Accelerator:
    # Text-only batches leave the connector unused; DDP must not wait for its gradients then.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    # On a machine without an accelerator, processes started by `accelerate launch --multi_gpu` (torchrun)
    # form a CPU (gloo) process group instead of each training alone.
    cpu = not torch.accelerator.is_available()
    precision = cfg.train.mixed_precision
    if precision == "bf16" and bf16_is_emulated():
        log.warning("train.mixed_precision: this CPU has no bf16 matrix instructions; training in float32")
        precision = "no"
    try:
        return Accelerator(mixed_precision=precision, kwargs_handlers=[ddp], cpu=cpu)
    except ValueError as e:
        if "already been initialized" not in str(e):
            raise
        # Accelerate keeps one state per process: a second run in it must use the same precision.
        raise VlitError(f"train.mixed_precision: {precision!r} differs from an earlier training "
                        "run in this process; Accelerate allows one setting per process") from None
