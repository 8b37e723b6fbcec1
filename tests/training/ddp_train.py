"""Run a recipe (`debug`, `debug-t5`) under `accelerate launch`; every process writes the weights it ended with.

    ddp_train.py OUT RECIPE [key=value ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from safetensors.torch import save_file

from vlit.config import Config, load_yaml
from vlit.models.parts import part_state
from vlit.models.saving import dedupe_tensors
from vlit.training.accelerator import make_accelerator
from vlit.training.loop import Trainer

if __name__ == "__main__":
    out = Path(sys.argv[1])
    cfg = load_yaml(Config, sys.argv[2], sys.argv[3:])
    accelerator = make_accelerator(cfg)
    trainer = Trainer(cfg, out, accelerator)
    trainer.run()
    trained = part_state(trainer.model, ["connector", "lora"])
    save_file(dedupe_tensors(trained), out / f"rank{accelerator.process_index}.safetensors")
