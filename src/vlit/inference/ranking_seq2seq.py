"""Ranked answers with an encoder-decoder LLM (FlanT5), as LAVIS's `blip2_t5_instruct._predict_class` ranks:
the encoder runs once per prompt and its output is reused for every candidate, which the decoder scores as
its labels (the tokens training learns for that answer, the end token included unless `include_end=False`)."""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import IGNORE_INDEX, Processor
from vlit.errors import VlitError
from vlit.models.vlm import VisionLanguageModel


def decoder_candidates(processor: Processor, conversation: Conversation, candidates: list[str],
                       include_end: bool = True) -> list[list[int]]:
    """Each candidate's decoder label ids when it answers `conversation`."""
    from vlit.inference.candidates import require_user_turn_last

    require_user_turn_last(conversation, "rank answers")
    end = processor.tokenizer(processor.template.eos, add_special_tokens=False)["input_ids"] if not include_end \
        else []
    out = []
    for candidate in candidates:
        ids = processor.encode(conversation.add("assistant", candidate)).labels
        if end and ids[-len(end):] == end:
            ids = ids[: -len(end)]
        if not ids:
            raise VlitError(f"candidate {candidate!r}: no tokens to score")
        out.append(list(ids))
    return out


@torch.no_grad()
def encode_source(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                  image_features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """float[1, P, D] encoder output of the generation prompt (image included) and its mask long[1, P]."""
    from vlit.inference.ranking import _prompt_inputs

    ids, images = _prompt_inputs(model, processor, conversation, image_features, 0)
    mask = torch.ones_like(ids)
    hidden = model.llm.get_encoder()(inputs_embeds=model.embed_multimodal(ids, **images),
                                     attention_mask=mask).last_hidden_state
    return hidden, mask


@torch.no_grad()
def score_labels(model: VisionLanguageModel, hidden: torch.Tensor, mask: torch.Tensor,
                 candidates: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """float[C] summed log-likelihoods and long[C] token counts of decoder label candidates, the encoder output
    `hidden` shared by all (expanded, not recomputed)."""
    count, width = len(candidates), max(len(c) for c in candidates)
    labels = torch.full((count, width), IGNORE_INDEX, dtype=torch.long, device=hidden.device)
    for i, c in enumerate(candidates):
        labels[i, : len(c)] = torch.tensor(c, device=hidden.device)
    encoder = BaseModelOutput(last_hidden_state=hidden.expand(count, -1, -1))
    logits = model.llm(encoder_outputs=encoder, attention_mask=mask.expand(count, -1), labels=labels).logits
    scored = labels != IGNORE_INDEX
    token = logits.float().log_softmax(-1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    return (token * scored).sum(1), scored.sum(1)


@torch.no_grad()
def first_token_logprobs(model: VisionLanguageModel, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """float[V]: the decoder's log-probabilities of the answer's first token."""
    start = model.llm.config.decoder_start_token_id
    decoder = torch.full((1, 1), start, dtype=torch.long, device=hidden.device)
    logits = model.llm(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                       decoder_input_ids=decoder).logits
    return logits[0, -1].float().log_softmax(-1)


def seq2seq_scores(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                   candidates: list[str], include_end: bool, image_features: torch.Tensor | None,
                   batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float[C] summed log-likelihoods and long[C] token counts of `candidates` answering `conversation`: the
    encoder once, the decoder on the candidates `batch_size` at a time."""
    ids = decoder_candidates(processor, conversation, candidates, include_end)
    hidden, mask = encode_source(model, processor, conversation, image_features)
    sums, counts = [], []
    for start in range(0, len(ids), batch_size):
        s, n = score_labels(model, hidden, mask, ids[start: start + batch_size])
        sums.append(s)
        counts.append(n)
    return torch.cat(sums), torch.cat(counts)


def seq2seq_letter_logprobs(model: VisionLanguageModel, processor: Processor, conversation: Conversation,
                            letters: tuple[str, ...], image_features: torch.Tensor | None) -> torch.Tensor:
    """float[L]: the decoder's log-probabilities of each letter's token as the answer's first token."""
    first = [ids[0] for ids in decoder_candidates(processor, conversation, list(letters), include_end=False)]
    if len(set(first)) != len(first):
        raise VlitError(f"letters: {', '.join(letters)} do not have distinct tokens")
    return first_token_logprobs(model, *encode_source(model, processor, conversation, image_features))[first]
