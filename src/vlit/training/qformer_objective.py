"""BLIP-2's first stage as a training objective: the Q-Former learns to read the frozen image features against
each row's answer text with image-text contrastive (ITC), image-text matching (ITM) and image-grounded text
generation (ITG) losses, as LAVIS's `Blip2Qformer.forward` does, and the LLM never runs.

The heads these losses need (ITC projections and temperature, the ITM head, the LM head) exist only while the
stage trains: they live here, not in the model, so the model saved after the stage is the plain vlit model with
its connector's Q-Former, `query_tokens` and `ln_vision` trained and `language_projection` untouched. The
stage's checkpoints store them beside the optimizer (`training.checkpoint.HEADS_FILE`): resuming mid-stage needs
them, and with the checkpoint's model they score image-text pairs.

The Q-Former is the connector's transformers `InstructBlipQFormerModel`, used as is. The text passes go through
its word embeddings and its text feed-forward layers (what LAVIS's BERT Q-Former uses for text); BLIP-2's
query-only `Blip2QFormerModel` has neither, so a stage of this kind refuses that connector (`config.recipe`).
Over [Q queries; T text tokens] the three losses attend as BLIP-2's:
- ITC: queries with the image, queries seeing queries only; the text alone, seeing text only.
- ITM: queries and text bidirectional (the connector's own instruction-aware pattern), queries with the image.
- ITG: queries see queries only; text sees every query and, causally, the text before it. transformers'
  Q-Former takes a prepared 4-D mask as is (`create_bidirectional_mask` returns one unchanged), so this is one
  forward. LAVIS instead reuses the ITC query pass's keys and values as a cache; queries never see text, so the
  values are the same, and this forward's query outputs serve as ITC's image features too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from vlit.config import QFormerObjectiveConfig
from vlit.data.loading.batch import SideInputBuilder, TextInput
from vlit.data.loading.processor import IGNORE_INDEX
from vlit.data.loading.side_inputs import TextInputBuilder
from vlit.errors import VlitError
from vlit.models.connectors.qformer import QFormerConnector

TEXT = "answer"
"""The side input a `qformer` stage's batches carry: each image's answer, in the Q-Former's tokens."""
LABEL_SMOOTHING = 0.1
"""LAVIS smooths the ITC targets and BLIP-2's LM loss (`BertLMHeadModel`) by 0.1."""


@dataclass
class QFormerLosses:
    """The stage's loss (the sum of the trained losses, as LAVIS) and each loss on its own, by name."""

    loss: torch.Tensor
    parts: dict[str, torch.Tensor]


class QFormerHeads(nn.Module):
    """The training-only weights: BLIP-2's `vision_proj`, `text_proj`, `temp` and `itm_head`, and BERT's LM
    prediction head (dense-GELU-LayerNorm; its decoder is the Q-Former's word embeddings, tied as in BERT, plus
    a bias of its own). MiniLM ships without an MLM head, so the LM head starts fresh (BERT's init)."""

    def __init__(self, hidden: int, embed_dim: int, vocab_size: int, eps: float, std: float):
        super().__init__()
        self.vision_proj = nn.Linear(hidden, embed_dim)
        self.text_proj = nn.Linear(hidden, embed_dim)
        self.temp = nn.Parameter(torch.tensor(0.07))
        self.itm_head = nn.Linear(hidden, 2)
        self.lm_transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=eps))
        self.lm_bias = nn.Parameter(torch.zeros(vocab_size))
        nn.init.normal_(self.lm_transform[0].weight, std=std)
        nn.init.zeros_(self.lm_transform[0].bias)

    def lm_logits(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """float[B, T, H] text outputs -> float[B, T, V] next-token logits."""
        return F.linear(self.lm_transform(hidden), word_embeddings, self.lm_bias)


class QFormerObjective(nn.Module):
    """The connector's Q-Former and the heads; `forward` returns BLIP-2's first-stage losses for a batch.

    Accelerate prepares this module instead of the whole model in a `qformer` stage, so under DDP the
    connector's and the heads' gradients are averaged across processes; the LLM is not part of it.
    """

    def __init__(self, vision: nn.Module, connector: nn.Module, cfg: QFormerObjectiveConfig):
        super().__init__()
        if not isinstance(connector, QFormerConnector) or not connector.instruction_aware:
            raise VlitError("objective: 'qformer' needs the instruction-aware Q-Former connector")
        from vlit.assets import qformer_tokenizer

        self.vision = vision
        self.connector = connector
        self.losses = tuple(cfg.losses)
        config = connector.qformer.config
        self.heads = QFormerHeads(config.hidden_size, cfg.embed_dim, config.vocab_size, config.layer_norm_eps,
                                  config.initializer_range)
        tokenizer = qformer_tokenizer(connector.tokenizer_name)
        self.answer_input = TextInputBuilder(tokenizer, cfg.max_text_tokens, reads="answer")
        # BLIP-2 starts the generated text with its own `[DEC]` (the tokenizer's BOS) in place of [CLS], so the
        # shared Q-Former can tell generation from the ITC / ITM passes. InstructBLIP's Q-Former tokenizer has it;
        # MiniLM's has none, and [MASK] plays its part: trained in MiniLM, never in an answer, not [CLS].
        self.decode_token_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.mask_token_id
        if self.decode_token_id >= config.vocab_size:
            raise VlitError(f"connector.vocab_size: {config.vocab_size} has no row for the tokenizer's generation "
                            f"start token {self.decode_token_id}")

    def side_inputs(self) -> dict[str, SideInputBuilder]:
        """What the stage's batches carry beside the image: each image's answer (not the instruction)."""
        return {TEXT: self.answer_input}

    def forward(self, image_features: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None,
                side: dict[str, TextInput] | None = None) -> QFormerLosses:
        """float[I, N, Dv] features (or pixels float[I, 3, S, S]) and each image's answer ids -> the losses."""
        if image_features is None:
            if pixel_values is None:
                raise VlitError("objective 'qformer': a batch without images has nothing to learn from; train "
                                "this stage on rows with images")
            with torch.no_grad():  # the stage trains only the connector
                image_features = self.vision(pixel_values)
        if not side or TEXT not in side:
            raise VlitError(f"side input {TEXT!r}: a 'qformer' stage's batches carry each image's answer")
        text = side[TEXT]
        connector = self.connector
        image = connector.ln_vision(image_features.to(connector.query_tokens.dtype))
        # Rows whose answers are the same text (two images of one class) are each other's positives, never
        # negatives: BLIP's retrieval fine-tuning does the same with its image ids.
        same = (text.ids[:, None] == text.ids[None]).all(-1)
        parts = {}
        query_out, lm_logits = self.grounded(image, text)
        if "itc" in self.losses or "itm" in self.losses:  # ITM draws its negatives from the ITC similarities
            sim = self.similarity(query_out, self.text_features(text))
        if "itc" in self.losses:
            targets = same.float() / same.sum(1, keepdim=True)
            parts["itc"] = (F.cross_entropy(sim.float(), targets, label_smoothing=LABEL_SMOOTHING)
                            + F.cross_entropy(sim.t().float(), targets, label_smoothing=LABEL_SMOOTHING)) / 2
        if "itm" in self.losses:
            parts["itm"] = self.matching(image, text, sim.detach().float(), same)
        if "itg" in self.losses:
            labels = text.ids.masked_fill(text.mask == 0, IGNORE_INDEX)[:, 1:]
            parts["itg"] = F.cross_entropy(lm_logits[:, :-1].transpose(1, 2).float(), labels,
                                           ignore_index=IGNORE_INDEX, label_smoothing=LABEL_SMOOTHING)
        return QFormerLosses(sum(parts.values()), parts)

    def grounded(self, image: torch.Tensor, text: TextInput) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The queries' outputs float[B, Q, H] (queries see queries and the image) and, when ITG trains, the
        next-token logits float[B, T, V] of the answer started with the generation token (text sees every query
        and the text before it)."""
        queries = self.connector.query_tokens.expand(image.shape[0], -1, -1)
        qformer = self.connector.qformer
        if "itg" not in self.losses:
            return qformer(input_ids=None, query_embeds=queries, encoder_hidden_states=image).last_hidden_state, None
        num_queries = queries.shape[1]
        ids = text.ids.clone()
        ids[:, 0] = self.decode_token_id
        mask = generation_mask(qformer.config, queries, text.mask)
        hidden = qformer(input_ids=ids, attention_mask=mask, query_embeds=queries,
                         encoder_hidden_states=image).last_hidden_state
        word_embeddings = qformer.get_input_embeddings().weight
        return hidden[:, :num_queries], self.heads.lm_logits(hidden[:, num_queries:], word_embeddings)

    def similarity(self, query_out: torch.Tensor, text_feat: torch.Tensor) -> torch.Tensor:
        """float[B, B] image x text: the best of the image's projected queries for that text, over the learned
        temperature (clamped to BLIP's 0.001..0.5).

        One process only: LAVIS first gathers the image and text features of every process
        (`concat_all_gather`), so each row meets the global batch's negatives; under DDP here they are this
        process's rows."""
        image_feats = F.normalize(self.heads.vision_proj(query_out), dim=-1)
        return torch.einsum("iqe,te->itq", image_feats, text_feat).amax(-1) / self.heads.temp.clamp(1e-3, 0.5)

    def text_features(self, text: TextInput) -> torch.Tensor:
        """float[B, E]: the answer alone through the Q-Former (text sees text only), its [CLS] output projected
        and L2-normalised."""
        out = self.connector.qformer(input_ids=text.ids, attention_mask=text.mask).last_hidden_state
        return F.normalize(self.heads.text_proj(out[:, 0]), dim=-1)

    def matching(self, image: torch.Tensor, text: TextInput, sim: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """BLIP-2's ITM: each pair, one hard negative image per text and one hard negative text per image, drawn
        in proportion to the ITC similarity (`sim` float[B, B], image x text); a 2-way head on the mean of the
        query outputs of queries and text attending to each other."""
        batch = image.shape[0]
        with torch.no_grad():
            weights_i2t = (F.softmax(sim, dim=1) + 1e-4).masked_fill(same, 0)
            weights_t2i = (F.softmax(sim.t(), dim=1) + 1e-4).masked_fill(same, 0)
            # A row whose answer every other row shares has no negative: it draws a placeholder (any row) that
            # the loss leaves out.
            lonely = ~(~same).any(1)
            weights_i2t[lonely] = 1.0
            weights_t2i[lonely] = 1.0
            negative_image = torch.multinomial(weights_t2i, 1).squeeze(1)
            negative_text = torch.multinomial(weights_i2t, 1).squeeze(1)
        ids = torch.cat([text.ids, text.ids, text.ids[negative_text]])
        text_mask = torch.cat([text.mask, text.mask, text.mask[negative_text]])
        images = torch.cat([image, image[negative_image], image])  # positive, negative image, negative text
        queries = self.connector.query_tokens.expand(3 * batch, -1, -1)
        query_mask = torch.ones(queries.shape[:2], dtype=text_mask.dtype, device=text_mask.device)
        hidden = self.connector.qformer(input_ids=ids, attention_mask=torch.cat([query_mask, text_mask], dim=1),
                                        query_embeds=queries, encoder_hidden_states=images).last_hidden_state
        logits = self.heads.itm_head(hidden[:, : queries.shape[1]]).mean(1)
        labels = torch.cat([torch.ones(batch), torch.zeros(2 * batch)]).long().to(logits.device)
        labels[batch:][lonely.repeat(2)] = IGNORE_INDEX
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)


def generation_mask(config, queries: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """ITG's attention over [queries; text] as the 4-D mask transformers' attention takes for this Q-Former's
    implementation (bool for SDPA, additive for eager): queries see queries only, text sees every query and the
    text up to itself; text padding is masked."""
    num_queries = queries.shape[1]
    padding = torch.cat([torch.ones(queries.shape[:2], dtype=text_mask.dtype, device=text_mask.device),
                         text_mask], dim=1)

    def allowed(batch_idx, head_idx, q_idx, kv_idx):
        return (kv_idx < num_queries) | ((q_idx >= num_queries) & (kv_idx <= q_idx))

    shape = torch.empty(padding.shape[0], padding.shape[1], 1, dtype=queries.dtype, device=queries.device)
    return create_bidirectional_mask(config=config, inputs_embeds=shape, attention_mask=padding,
                                     and_mask_function=allowed)
