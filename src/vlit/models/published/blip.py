"""InstructBLIP and BLIP-2 in, from transformers' layout (`Salesforce/instructblip-vicuna-7b`,
`Salesforce/blip2-opt-2.7b`, and with FlanT5: `Salesforce/instructblip-flan-t5-xl`, `Salesforce/blip2-flan-t5-xl`).

The EVA ViT-g tower and the LLM stay in the folder (referenced, with a `key_mapping`); the Q-Former, its
queries, the projection and `ln_vision` are copied into the vlit checkpoint. transformers holds LAVIS's
`ln_vision` as the tower's `post_layernorm`; vlit's Q-Former connector owns it (it trains with the Q-Former,
as in LAVIS), so the connector reads the tower's last hidden layer before that norm (`feature_layer: -1`) and
applies `ln_vision` itself: the same function.

A FlanT5 folder (`use_decoder_only_language_model: false`) holds a whole `T5ForConditionalGeneration` under
`language_model.` (`shared`, `encoder`, `decoder`, its own `lm_head`): the same mapping names it, and `load_llm`
loads it as the seq2seq LM its `text_config` is. Its tokenizer is T5's, with `<image>` after the 32100 pieces
(`image_token_index` 32100, a row of FlanT5's 32128) or, in older revisions, without: vlit adds it at that id.
"""

from __future__ import annotations

import re
from pathlib import Path

from vlit.config import LLMConfig, ModelConfig, QFormerConnectorConfig, VisionConfig
from vlit.errors import VlitError
from vlit.models.published.common import (
    check_covered,
    check_image_token,
    dtype_of,
    preprocessor,
    read_json,
    resize_rule,
)
from vlit.models.published.files import read_state_dict, weight_names
from vlit.models.published.imported import Imported

CONNECTOR_NAMES = {r"^query_tokens$": "connector.query_tokens", r"^qformer\.": "connector.qformer.",
                   r"^language_projection\.": "connector.language_projection.",
                   r"^vision_model\.post_layernorm\.": "connector.ln_vision."}

# What vlit's Q-Former builds (`vlit.models.connectors.qformer.qformer_config`); a checkpoint must agree.
QFORMER_FIXED = {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 512}


def convert_blip(source: Path, name: str, dtype: str | None) -> Imported:
    """An `instructblip` or `blip-2` folder (a decoder-only LLM or FlanT5) as a vlit checkpoint."""
    config = read_json(source / "config.json")
    where = source / "config.json"
    instruct = config.get("model_type") == "instructblip"
    qformer = config.get("qformer_config") or {}
    vision = config.get("vision_config") or {}
    for key, value in QFORMER_FIXED.items():
        if key in qformer and qformer[key] != value:
            raise VlitError(f"{where}: qformer_config.{key} is {qformer[key]!r}; vlit's Q-Former uses {value!r}")
    names = weight_names(source)
    check_covered(source, names, {r"^vision_model\.": "vision", r"^query_tokens$": "connector",
                                  r"^qformer\.": "connector", r"^language_projection\.": "connector",
                                  r"^language_model\.": "llm"})
    index = config.get("image_token_index", config.get("image_token_id"))
    image_token_note = _image_token_note(source, index)
    state = read_state_dict(source, keep=lambda k: any(re.match(p, k) for p in CONNECTOR_NAMES))
    weights = {}
    for key, tensor in state.items():
        pattern = next(p for p in CONNECTOR_NAMES if re.match(p, key))
        weights[re.sub(pattern, CONNECTOR_NAMES[pattern], key)] = tensor
    tokenizer = source / "qformer_tokenizer"
    if instruct and not tokenizer.is_dir():
        raise VlitError(f"{source}: no qformer_tokenizer folder (InstructBLIP's Q-Former tokenizer)")
    connector = QFormerConnectorConfig(
        num_queries=config.get("num_query_tokens", 32), init="random",
        hidden_size=qformer.get("hidden_size", 768), num_layers=qformer.get("num_hidden_layers", 12),
        num_heads=qformer.get("num_attention_heads", 12), intermediate_size=qformer.get("intermediate_size", 3072),
        cross_attention_frequency=qformer.get("cross_attention_frequency", 2),
        instruction_aware=instruct, max_instruction_tokens=512,
        tokenizer=str(tokenizer) if instruct else None,
        vocab_size=qformer.get("vocab_size", 30522),
        vision_norm_eps=vision.get("layer_norm_eps", 1e-6),
    )
    cfg = ModelConfig(
        vision=VisionConfig(source="hub", name=name, feature_layer=-1, drop_cls=False,
                            resize=resize_rule(preprocessor(source)), key_mapping={r"^vision_model\.": ""}),
        connector=connector,
        llm=LLMConfig(source="hub", name=name, dtype=dtype_of(config, dtype),
                      key_mapping={r"^language_model\.": ""}),
        template="instructblip", prompt_style="instructblip",
    )
    reads = f"reads the instruction (its own tokenizer, {connector.vocab_size} words)" if instruct \
        else "no instruction (BLIP-2)"
    notes = [f"Q-Former: {connector.num_layers} layers x {connector.hidden_size}, {connector.num_queries} queries, "
             f"{reads}"]
    if not config.get("use_decoder_only_language_model", True):
        notes.append("LLM: an encoder-decoder (FlanT5): the query tokens and the prompt go into its encoder, the "
                     "answer comes from its decoder")
    if image_token_note:
        notes.append(image_token_note)
    return Imported("instructblip" if instruct else "blip2", cfg, weights, ["connector"], notes)


def _image_token_note(source: Path, index: int | None) -> str | None:
    """Newer folders hold `<image>` in the tokenizer (`image_token_index`); older ones have none, and vlit adds
    it. Any other token at that id is an error."""
    if index is None:
        return "no image_token_index: vlit adds <image> to the tokenizer (its row is never read or generated)"
    check_image_token(source, index)
    return None
