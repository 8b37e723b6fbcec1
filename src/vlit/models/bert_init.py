"""A BERT's weights as a Q-Former's starting point: LAVIS starts BLIP-2's Q-Former from `bert-base-uncased`;
vlit's embedded default starts from the packaged all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT of the same
layout). The BERT names are mapped onto transformers' `InstructBlipQFormerModel` (instruction-aware) or
`Blip2QFormerModel` (queries only).
"""

from __future__ import annotations

import logging
import re

import torch
from safetensors.torch import load_file
from torch import nn

from vlit.assets import minilm_path
from vlit.errors import VlitError

log = logging.getLogger(__name__)

# BERT name -> Q-Former name(s), applied in order to the part after `encoder.layer.<i>.`. BERT has one FFN;
# the InstructBLIP layer has two (`intermediate_query`/`output_query` for the queries, `intermediate`/`output`
# for the instruction tokens) and LAVIS starts both from BERT's, so the FFN maps to both. BLIP-2's
# transformers Q-Former keeps only the queries' FFN; the surplus names find no place and are dropped there.
_LAYER_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"^attention\.self\.", ("attention.attention.",)),
    (r"^attention\.output\.", ("attention.output.",)),
    (r"^intermediate\.", ("intermediate.", "intermediate_query.")),
    (r"^output\.", ("output.", "output_query.")),
)
_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")


def bert_qformer_weights(bert: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A BERT state dict under `InstructBlipQFormerModel` names, and the BERT keys left unused (the pooler).

    BERT adds `token_type_embeddings[0]` to every token; the Q-Former has no token types, so that row is
    folded into the position embeddings, which keeps the text path's embeddings exactly BERT's.
    """
    bert = {k.removeprefix("bert."): v for k, v in bert.items()}
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


def minilm_qformer_weights() -> tuple[dict[str, torch.Tensor], list[str]]:
    """The packaged MiniLM under Q-Former names (see `bert_qformer_weights`)."""
    return bert_qformer_weights(load_file(minilm_path() / "model.safetensors"))


def _layer_targets(name: str) -> tuple[str, ...]:
    for pattern, replacements in _LAYER_RULES:
        if re.match(pattern, name):
            return tuple(re.sub(pattern, r, name) for r in replacements)
    return ()


def _read_bert(name: str) -> dict[str, torch.Tensor]:
    """A BERT's weights from a folder or hub id, read by transformers' own `BertModel`."""
    from transformers import BertModel

    try:
        return BertModel.from_pretrained(name, add_pooling_layer=False).state_dict()
    except (OSError, ValueError) as e:
        raise VlitError(f"connector.init: cannot load BERT {name!r} ({str(e).splitlines()[0]})") from None


def load_bert(qformer: nn.Module, name: str = "minilm") -> list[str]:
    """Copy a BERT (`minilm`: the packaged MiniLM) into `qformer` in place; returns the Q-Former keys that
    keep their fresh init (cross-attention).

    Raises VlitError when anything other than cross-attention would stay fresh, or a mapped weight other than
    those BLIP-2's Q-Former has no place for, so a renamed module in a future transformers fails loudly
    instead of training from noise.
    """
    weights, unused = minilm_qformer_weights() if name == "minilm" else bert_qformer_weights(_read_bert(name))
    own = qformer.state_dict()
    if "layernorm.weight" in own:  # Blip2QFormerModel: queries only, its LayerNorm at the top
        weights = {("layernorm." + k.rsplit(".", 1)[1] if k.startswith("embeddings.layernorm.") else k): v
                   for k, v in weights.items()}
        dropped = [k for k in weights if k not in own]
        weights = {k: v for k, v in weights.items() if k in own}
        if any(not (k.startswith("embeddings.") or re.search(r"\.(intermediate|output)\.", k)) for k in dropped):
            raise VlitError(f"connector.init: {name!r} does not fit BLIP-2's Q-Former ({dropped[:3]})")
    mismatched = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise VlitError(f"connector.init: {name!r} does not fit the Q-Former's size ({mismatched[0]}: "
                        f"{tuple(weights[mismatched[0]].shape)} vs {tuple(own[mismatched[0]].shape)})")
    result = qformer.load_state_dict(weights, strict=False)
    not_cross = [k for k in result.missing_keys if ".crossattention." not in k]
    if not_cross or result.unexpected_keys:
        raise VlitError(f"connector.init: {name!r} does not fit the Q-Former (not loaded: {not_cross}, "
                        f"no place for: {result.unexpected_keys})")
    log.info("Q-Former from %s: %d tensors loaded, %d cross-attention tensors fresh, unused: %s",
             name, len(weights), len(result.missing_keys), ", ".join(unused))
    return list(result.missing_keys)
