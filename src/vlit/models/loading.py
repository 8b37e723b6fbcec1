"""Loading one part (a vision tower, an LLM) from a transformers folder, strictly.

transformers' `from_pretrained` warns about missing weights and initialises them at random; a published model
loaded that way with one renamed key would run, badly, with nothing to say why. Here a part's missing weight is
an error naming the weights. Weights of *other* parts in the same checkpoint (a LLaVA folder holds the tower,
the projector and the LLM) are expected and ignored: the `key_mapping` picks this part's.
"""

from __future__ import annotations

from typing import Any

from safetensors import SafetensorError
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import logging as transformers_logging

from vlit.errors import VlitError
from vlit.untrusted import LOAD_ERRORS, why_not_loaded


def load_pretrained_part(model_class: type[PreTrainedModel], name: str, config: PretrainedConfig,
                         key_mapping: dict[str, str], part: str, **kwargs: Any) -> PreTrainedModel:
    """`model_class.from_pretrained(name, config=config, key_mapping=...)`, refusing missing or misshapen
    weights with one line that names them (`part` is the config section the user would fix)."""
    # transformers reports the other parts' weights as "unexpected" (a table per load) and a `llava_llama`
    # config read as `llama` as a mismatch; both are expected here, and what matters (missing weights) is
    # checked below.
    quiet = transformers_logging.get_verbosity() < transformers_logging.ERROR
    previous = transformers_logging.get_verbosity()
    if quiet:
        transformers_logging.set_verbosity_error()
    try:
        model, info = model_class.from_pretrained(name, config=config, key_mapping=key_mapping or None,
                                                  output_loading_info=True, **kwargs)
    except (*LOAD_ERRORS, SafetensorError) as e:  # a damaged safetensors file too: named, not a traceback
        raise VlitError(f"{part}.name: cannot load {name!r} ({why_not_loaded(e)})") from None
    finally:
        if quiet:
            transformers_logging.set_verbosity(previous)
    # Tied weights (an LM head tied to the embeddings) are reported missing by some versions; they are not.
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    missing = sorted(k for k in info.get("missing_keys", []) if k not in tied)
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", []))
    if missing or mismatched:
        shown = ", ".join((missing + mismatched)[:4])
        more = len(missing) + len(mismatched) - 4
        shown += f" and {more} more" if more > 0 else ""
        raise VlitError(f"{part}.name: {name!r} does not hold the whole {model_class.__name__} "
                        f"({'missing' if missing else 'wrong shape'}: {shown}); check {part}.key_mapping")
    return model
