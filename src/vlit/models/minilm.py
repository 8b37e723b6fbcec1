"""The packaged all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT): the Q-Former's tokenizer and its starting weights.

InstructBLIP starts its Q-Former from BERT; vlit's embedded default starts from MiniLM, which has the same
layout at a laptop's size. The BERT names are mapped onto transformers' `InstructBlipQFormerModel`.
"""

from __future__ import annotations

import logging
import re

import torch
from safetensors.torch import load_file
from transformers.models.instructblip.modeling_instructblip import InstructBlipQFormerModel

from vlit.assets import minilm_path
from vlit.errors import VlitError

log = logging.getLogger(__name__)

# BERT name -> Q-Former name(s), applied in order to the part after `encoder.layer.<i>.`. BERT has one FFN;
# the InstructBLIP layer has two (`intermediate_query`/`output_query` for the queries, `intermediate`/`output`
# for the instruction tokens) and LAVIS starts both from BERT's, so the FFN maps to both.
_LAYER_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"^attention\.self\.", ("attention.attention.",)),
    (r"^attention\.output\.", ("attention.output.",)),
    (r"^intermediate\.", ("intermediate.", "intermediate_query.")),
    (r"^output\.", ("output.", "output_query.")),
)
_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")


def minilm_qformer_weights() -> tuple[dict[str, torch.Tensor], list[str]]:
    """MiniLM's weights under `InstructBlipQFormerModel` names, and the MiniLM keys left unused (the pooler).

    BERT adds `token_type_embeddings[0]` to every token; the Q-Former has no token types, so that row is
    folded into the position embeddings, which keeps the text path's embeddings exactly MiniLM's.
    """
    bert = load_file(minilm_path() / "model.safetensors")
    out: dict[str, torch.Tensor] = {
        "embeddings.word_embeddings.weight": bert.pop("embeddings.word_embeddings.weight"),
        "embeddings.position_embeddings.weight": bert.pop("embeddings.position_embeddings.weight")
        + bert.pop("embeddings.token_type_embeddings.weight")[0],
        "embeddings.layernorm.weight": bert.pop("embeddings.LayerNorm.weight"),
        "embeddings.layernorm.bias": bert.pop("embeddings.LayerNorm.bias"),
    }
    bert.pop("embeddings.position_ids", None)  # a buffer the Q-Former builds itself
    unused = []
    for key, tensor in bert.items():
        match = _LAYER_KEY.match(key)
        targets = _layer_targets(match.group(2)) if match else ()
        for name in targets:
            out[f"encoder.layer.{match.group(1)}.{name}"] = tensor
        if not targets:
            unused.append(key)
    return out, sorted(unused)


def _layer_targets(name: str) -> tuple[str, ...]:
    for pattern, replacements in _LAYER_RULES:
        if re.match(pattern, name):
            return tuple(re.sub(pattern, r, name) for r in replacements)
    return ()


def load_minilm(qformer: InstructBlipQFormerModel) -> list[str]:
    """Copy MiniLM into `qformer` in place; returns the keys that keep their fresh init (cross-attention).

    Raises VlitError when anything other than cross-attention would stay fresh or a mapped weight has no
    place, so a renamed module in a future transformers fails loudly instead of training from noise.
    """
    weights, unused = minilm_qformer_weights()
    result = qformer.load_state_dict(weights, strict=False)
    not_cross = [k for k in result.missing_keys if ".crossattention." not in k]
    if not_cross or result.unexpected_keys:
        raise VlitError(f"{minilm_path()}: MiniLM does not fit the Q-Former (not loaded: {not_cross}, "
                        f"no place for: {result.unexpected_keys})")
    log.info("Q-Former from MiniLM: %d tensors loaded, %d cross-attention tensors fresh, unused: %s",
             len(weights), len(result.missing_keys), ", ".join(unused))
    return list(result.missing_keys)
