"""InstructBLIP's instruction-aware Q-Former: learned queries cross-attend to the image features and share
self-attention with the instruction's tokens; the queries' outputs are projected to the LLM width.

Built on transformers' `InstructBlipQFormerModel` (used as is), with the parts LAVIS keeps around it:
`ln_vision` (BLIP-2's LayerNorm over the vision features), `query_tokens` and `language_projection`.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from transformers import Blip2QFormerConfig
from transformers.models.blip_2.modeling_blip_2 import Blip2QFormerModel
from transformers.models.instructblip.configuration_instructblip import InstructBlipQFormerConfig
from transformers.models.instructblip.modeling_instructblip import InstructBlipQFormerModel

from vlit.config import QFormerConnectorConfig
from vlit.data.loading.batch import SideInputBuilder, TextInput
from vlit.data.loading.side_inputs import INSTRUCTION, TextInputBuilder
from vlit.errors import VlitError
from vlit.models.connectors.base import Connector

MAX_POSITIONS = 512
PAD_TOKEN_ID = 0


def qformer_config(cfg: QFormerConnectorConfig, vision_dim: int) -> InstructBlipQFormerConfig:
    """The transformers config of the Q-Former; layer sizes and norms as BERT, so a BERT (MiniLM) loads."""
    return InstructBlipQFormerConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=MAX_POSITIONS,
        layer_norm_eps=1e-12,
        pad_token_id=PAD_TOKEN_ID,
        cross_attention_frequency=cfg.cross_attention_frequency,
        encoder_hidden_size=vision_dim,
    )


def blip2_qformer_config(cfg: QFormerConnectorConfig, vision_dim: int) -> Blip2QFormerConfig:
    """BLIP-2's Q-Former (queries only: no instruction embeddings, no instruction FFN), same sizes."""
    fields = qformer_config(cfg, vision_dim).to_dict()
    return Blip2QFormerConfig(**{k: v for k, v in fields.items() if k not in ("model_type", "transformers_version")})


class QFormerConnector(Connector):
    """float[B, N, Dv] features (+ the instruction) -> float[B, Q, Dl]: always Q = `num_queries` tokens.

    Instruction-aware, the Q-Former is transformers' `InstructBlipQFormerModel`; otherwise BLIP-2's own
    `Blip2QFormerModel`, so a BLIP-2 checkpoint is this module with its names unchanged.
    """

    def __init__(self, cfg: QFormerConnectorConfig, vision_dim: int, llm_dim: int):
        super().__init__()
        self.num_queries = cfg.num_queries
        self.instruction_aware = cfg.instruction_aware
        self.max_instruction_tokens = cfg.max_instruction_tokens
        self.tokenizer_name = cfg.tokenizer
        self.ln_vision = nn.LayerNorm(vision_dim, eps=cfg.vision_norm_eps)
        config = qformer_config(cfg, vision_dim)
        self.query_tokens = nn.Parameter(torch.empty(1, cfg.num_queries, cfg.hidden_size))
        nn.init.normal_(self.query_tokens, std=config.initializer_range)
        if cfg.instruction_aware:
            self.qformer = InstructBlipQFormerModel(config)
        else:
            self.qformer = Blip2QFormerModel(blip2_qformer_config(cfg, vision_dim))
        self.language_projection = nn.Linear(cfg.hidden_size, llm_dim)
        #: Q-Former weights taken from a pretrained BERT (`cfg.init`): a checkpoint loaded over this model
        #: may lack them (BLIP-2's Q-Former has no instruction embeddings), the rest it must hold.
        self.pretrained_keys: frozenset[str] = frozenset()
        if cfg.init != "random":
            from vlit.models.bert_init import load_bert

            fresh = set(load_bert(self.qformer, cfg.init))
            self.pretrained_keys = frozenset(f"qformer.{k}" for k in self.qformer.state_dict() if k not in fresh)

    def side_inputs(self) -> dict[str, SideInputBuilder]:
        """The instruction, tokenized by the configured tokenizer (MiniLM's by default), when instruction-aware."""
        if not self.instruction_aware:
            return {}
        from vlit.assets import qformer_tokenizer

        return {INSTRUCTION: TextInputBuilder(qformer_tokenizer(self.tokenizer_name), self.max_instruction_tokens)}

    def adapt_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A connector state from a checkpoint, under this module's names: BLIP-2's Q-Former keeps its
        LayerNorm at the top (`qformer.layernorm`), InstructBLIP's inside the embeddings."""
        if not self.instruction_aware:
            return state
        return {re.sub(r"^qformer\.layernorm\.", "qformer.embeddings.layernorm.", k): v for k, v in state.items()}

    def forward(self, features: torch.Tensor, instruction: TextInput | None = None) -> torch.Tensor:
        """float[B, N, Dv] features and long[B, T] instruction ids/mask -> float[B, Q, Dl].

        The queries come first in the sequence; instruction tokens follow, masked where padded. Attention
        among them is bidirectional, so every query sees the whole instruction.
        """
        batch = features.shape[0]
        queries = self.query_tokens.expand(batch, -1, -1)
        image = self.ln_vision(features)
        input_ids = attention_mask = None
        if self.instruction_aware:
            if instruction is None:
                raise VlitError("instruction: the instruction-aware Q-Former connector needs the instruction "
                                "ids (TextInput(ids, mask) from the processor's Q-Former tokenizer)")
            if instruction.ids.shape[0] != batch:
                raise VlitError(f"instruction: {instruction.ids.shape[0]} instruction(s) for {batch} image(s)")
            query_mask = torch.ones(batch, self.num_queries, dtype=instruction.mask.dtype, device=features.device)
            input_ids = instruction.ids
            attention_mask = torch.cat([query_mask, instruction.mask.to(features.device)], dim=1)
        if self.instruction_aware:
            hidden = self.qformer(input_ids=input_ids, attention_mask=attention_mask, query_embeds=queries,
                                  encoder_hidden_states=image).last_hidden_state
        else:
            hidden = self.qformer(query_embeds=queries, encoder_hidden_states=image).last_hidden_state
        return self.language_projection(hidden[:, : self.num_queries])

    def num_tokens(self, num_patches: int) -> int:
        return self.num_queries
