"""`vlit quickstart`: the main job on the embedded default parts, with nothing downloaded.

1. builds the quickstart instruction data (Fashion-MNIST + rendered scenes; held-in and held-out datasets);
2. trains the three families from the packaged parts (EfficientNet-Lite0, all-MiniLM-L6-v2,
   SmolLM2-135M-Instruct): InstructBLIP-style (BLIP-2's LLM-facing stage with the Q-Former's queries alone,
   then instruction tuning of the instruction-aware Q-Former), LLaVA-1.5-style (MLP, then MLP + LoRA),
   MiniGPT-v2-style (merge of 4 tokens + LoRA, task identifiers);
3. evaluates each on held-in and held-out test splits (a 95% interval beside every score), and the same models
   with an untrained connector on the headline split; checks that each model uses its image (the image-shuffle check);
   prints the table, example answers beside the ground truth, the MiniGPT-v2-style model's boxes drawn on test
   scenes, the time of every phase, and where every output is.

On a CPU the families run side by side, a process each with its share of the cores (`--workers`; their output
in `<out>/<family>/job.log`, a bar per family on the terminal); on a GPU one after the other.

`--steps N` runs every stage for N steps only (same code path; what `make test` runs).
"""

from vlit.quickstart.job import main

__all__ = ["main"]
