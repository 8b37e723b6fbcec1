"""VisionLanguageModel: a vision encoder, a connector and an unmodified causal LM, composed.

The processor has already expanded every `<image>` into exactly `num_image_tokens` placeholder ids; this
module scatters the connector's tokens into those positions (`embed_multimodal`) and hands the LLM
`inputs_embeds`. Training, generation and candidate scoring all go through that one function.
"""

from __future__ import annotations

import inspect
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from vlit.config import ModelConfig
from vlit.data.loading.batch import TextInput
from vlit.data.loading.processor import IGNORE_INDEX
from vlit.errors import VlitError
from vlit.models.connectors import Connector
from vlit.models.packing import mean_over_rows, pack_rows, packed_loss, real_positions
from vlit.models.vision import VisionEncoder


class VisionLanguageModel(nn.Module):
    def __init__(self, config: ModelConfig, vision: VisionEncoder, connector: Connector, llm: PreTrainedModel,
                 image_token_id: int):
        super().__init__()
        self.config = config
        self.vision = vision
        self.connector = connector
        self.llm = llm
        self.image_token_id = image_token_id
        #: An encoder-decoder LLM (FlanT5): the image tokens and the prompt go into its encoder, the answer is
        #: its decoder's labels (LAVIS's `blip2_t5_instruct`, transformers' InstructBLIP with T5).
        self.seq2seq = bool(getattr(llm.config, "is_encoder_decoder", False))
        # Names only: the builders (tokenizers) belong to the processor.
        self.side_input_names = tuple(connector.side_inputs())

    @property
    def num_image_tokens(self) -> int:
        """M: LLM tokens per image."""
        return self.connector.num_tokens(self.vision.num_patches)

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """float[I, 3, S, S] -> float[I, N, Dv]: what the vision encoder sees (and the feature cache stores)."""
        trainable = any(p.requires_grad for p in self.vision.parameters())
        with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
            return self.vision(pixel_values)

    def embed_multimodal(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                         image_features: torch.Tensor | None = None,
                         side: dict[str, TextInput] | None = None) -> torch.Tensor:
        """long[B, L] ids (+ I images) -> float[B, L, Dl] embeddings with image tokens in their placeholders.

        Images come as pixels float[I, 3, S, S] or as precomputed features float[I, N, Dv], in the order
        their placeholders appear in the batch (row by row). `side` holds the side inputs the connector
        declared (`Connector.side_inputs()`), one row per image; the processor's `Batch` carries them.
        """
        embeds = self.llm.get_input_embeddings()(input_ids)
        slots = input_ids == self.image_token_id
        num_slots = int(slots.sum())
        if image_features is None and pixel_values is not None:
            image_features = self.image_features(pixel_values)
        num_images = 0 if image_features is None else image_features.shape[0]
        expected = num_images * self.num_image_tokens
        if num_slots != expected:
            raise VlitError(
                f"image placeholders: the batch holds {num_slots} but {num_images} image(s) x "
                f"{self.num_image_tokens} tokens = {expected} are needed; build inputs with the model's processor"
            )
        if num_images == 0:
            return embeds
        side = side or {}
        missing = [name for name in self.side_input_names if name not in side]
        if missing:
            raise VlitError(f"side input {missing[0]!r}: the {type(self.connector).__name__} needs it; build "
                            "inputs with the model's processor (its Batch carries the connector's side inputs)")
        # The connector may run in another dtype than the encoder and the LLM (float32 beside a bf16 LLM).
        dtype = next(self.connector.parameters()).dtype
        tokens = self.connector(image_features.to(dtype), *(side[n] for n in self.side_input_names))
        tokens = tokens.to(embeds.dtype)
        return embeds.masked_scatter(slots.unsqueeze(-1), tokens.reshape(-1, tokens.shape[-1]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None,
                image_features: torch.Tensor | None = None, side: dict[str, TextInput] | None = None,
                loss_per: Literal["token", "sample"] = "token", pack: bool = False,
                **llm_kwargs) -> CausalLMOutputWithPast:
        """Logits float[B, L, V]; with `labels` (-100 where not learned) also the loss.

        `loss_per="token"` is the LLM's own loss, the mean over the batch's learned tokens (LLaVA, InstructBLIP);
        `"sample"` averages each row's tokens first, then the rows, so a one-word answer weighs as much as a
        paragraph beside it in the batch.

        With labels, logits are only computed from the position before the batch's first learned token on
        (`logits_to_keep`): prompts and images are most of a sequence, and the vocabulary projection of
        every prompt position would be wasted work. The loss is the same.

        `pack` (training, with labels and the attention mask): the rows' real tokens run as one sequence, no
        padding computed (`vlit.models.packing`); the loss is the same, the logits float[1, K, V] are those of
        the K positions whose next token is learned.
        """
        if loss_per not in ("token", "sample"):
            raise VlitError(f"loss_per: {loss_per!r} is not one of 'token', 'sample'")
        if pack and (self.seq2seq or labels is None or attention_mask is None):
            raise VlitError("pack: packing rows needs a decoder-only LLM, labels and the attention mask "
                            f"({'the LLM is an encoder-decoder' if self.seq2seq else 'one is missing'})")
        embeds = self.embed_multimodal(input_ids, pixel_values, image_features, side)
        if pack:
            return self._packed(embeds, attention_mask, labels, loss_per, llm_kwargs)
        if self.seq2seq:
            # `labels` are the decoder's (the answer): the LLM shifts them into its decoder inputs itself. No
            # position ids (T5's are relative) and nothing to trim: every decoder position is an answer token.
            out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **llm_kwargs)
            if loss_per == "sample" and labels is not None:
                out.loss = per_sample_loss(out.logits, labels, shift=False)
            return out
        if attention_mask is not None and "position_ids" not in llm_kwargs:
            # Positions count real tokens only, so left and right padding give the same result.
            llm_kwargs["position_ids"] = real_positions(attention_mask)
        if labels is not None and "logits_to_keep" not in llm_kwargs and self._keeps_logits:
            learned = (labels != IGNORE_INDEX).any(0).nonzero()
            length = labels.shape[1]
            keep = min(length - int(learned[0]) + 1 if len(learned) else 1, length)
            # Positions as an index tensor, not the int: indexing copies the kept hidden states into a
            # contiguous tensor, where a slice is a strided view that torch.matmul cannot fold into one matmul;
            # it then copies the vocabulary projection's weight once per row (2x slower in float32, 9x in bf16).
            llm_kwargs["logits_to_keep"] = torch.arange(length - keep, length, device=labels.device)
            labels = labels[:, -keep:]
        if loss_per == "token" or labels is None:
            return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **llm_kwargs)
        out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, **llm_kwargs)
        out.loss = per_sample_loss(out.logits, labels)
        return out

    def _packed(self, embeds: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, loss_per: str,
                llm_kwargs: dict) -> CausalLMOutputWithPast:
        packed = pack_rows(embeds, attention_mask, labels)
        # No attention mask and no cache: what makes transformers read restarting position ids as packed rows.
        kwargs = {**llm_kwargs, "attention_mask": None, "position_ids": packed.position_ids, "use_cache": False}
        if self._keeps_logits:
            logits = self.llm(inputs_embeds=packed.embeds, logits_to_keep=packed.logit_positions, **kwargs).logits
        else:
            logits = self.llm(inputs_embeds=packed.embeds, **kwargs).logits[:, packed.logit_positions]
        return CausalLMOutputWithPast(loss=packed_loss(logits, packed, loss_per), logits=logits)

    @property
    def _keeps_logits(self) -> bool:
        """Whether the LLM's forward takes `logits_to_keep` (transformers' causal LMs of 2025 on do)."""
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        return "logits_to_keep" in inspect.signature(base.forward).parameters

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 pixel_values: torch.Tensor | None = None, image_features: torch.Tensor | None = None,
                 side: dict[str, TextInput] | None = None, **generate_kwargs) -> torch.Tensor:
        """long[B, T]: new tokens only, through the LLM's own `generate` (left-pad batched prompts).

        The image placeholder id is suppressed: it is an input slot, never a word to say.
        """
        embeds = self.embed_multimodal(input_ids, pixel_values, image_features, side)
        suppress = list(generate_kwargs.pop("suppress_tokens", None) or []) + [self.image_token_id]
        out = self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask,
                                suppress_tokens=suppress, **generate_kwargs)
        # An encoder-decoder's output starts with its decoder start token, which is no word of the answer.
        return out[:, 1:] if self.seq2seq else out


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor, shift: bool = True) -> torch.Tensor:
    """Next-token cross-entropy averaged within each row, then over the rows that have learned tokens.

    logits float[B, K, V] line up with labels long[B, K] (the same last K positions); a causal LM's logit at
    position t predicts label t + 1 (`shift`), a seq2seq decoder's predicts label t. float32 like the LLM's
    own loss, since a bf16 log-softmax over a large vocabulary loses precision.
    """
    targets = labels[:, 1:] if shift else labels
    scores = logits[:, :-1] if shift else logits
    tokens = nn.functional.cross_entropy(scores.float().transpose(1, 2), targets,
                                         ignore_index=IGNORE_INDEX, reduction="none")
    learned = targets != IGNORE_INDEX
    rows = torch.arange(targets.shape[0], device=targets.device).unsqueeze(1).expand_as(targets)
    return mean_over_rows(tokens[learned], rows[learned], targets.shape[0])
