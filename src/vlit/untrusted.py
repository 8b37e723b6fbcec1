"""What vlit refuses to run from a model folder, and the one line that says why.

vlit loads weights from safetensors, and a pickle (`pytorch_model.bin`) only through `torch.load(weights_only=True)`,
which reads plain tensors and refuses anything that would call code. It never runs a folder's own Python (`auto_map`,
transformers' `trust_remote_code`): every `from_pretrained` that could reach such code passes
`trust_remote_code=False`, which also keeps transformers from asking on the terminal (and waiting for an answer).
"""

from __future__ import annotations

import pickle

NO_REMOTE_CODE = {"trust_remote_code": False}
"""Keyword arguments of every Auto* `from_pretrained` vlit calls on a user's model or tokenizer."""

PICKLE_REFUSED = ("its pickled weights hold more than tensors, and vlit never runs a pickle's code: it loads "
                  "safetensors, and pickles only as plain tensors (torch.load weights_only=True); "
                  "convert the weights to safetensors")
REMOTE_CODE_REFUSED = ("it needs its own Python code (auto_map, trust_remote_code), and vlit never runs code from "
                       "a model folder; use a model transformers supports itself")
LOAD_ERRORS = (OSError, ValueError, pickle.UnpicklingError)
"""What transformers raises for a folder it cannot or will not load (a missing file, an unknown or remote-code
architecture, a refused pickle)."""


def why_not_loaded(error: Exception) -> str:
    """Why transformers did not load a model, tokenizer or config, in one line: a refusal to run code said as
    such, anything else its first line."""
    if isinstance(error, pickle.UnpicklingError):
        return PICKLE_REFUSED
    text = str(error)
    if "trust_remote_code" in text:  # transformers' own wording for a folder that ships code (stable since v4.0)
        return REMOTE_CODE_REFUSED
    return text.splitlines()[0] if text else type(error).__name__
