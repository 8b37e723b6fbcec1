"""The processor: conversations -> model inputs.

It renders a conversation with a chat template, tokenizes it once, labels only assistant tokens, expands every
`<image>` into exactly `num_image_tokens` placeholder ids, builds the side inputs the connector declared (the
Q-Former's instruction ids), and turns images into pixels. The result is a typed `Batch`. The model never
parses text; a count mismatch is caught here, with the conversation named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from vlit.data.conversation import IMAGE_TOKEN, Conversation, ImageRef
from vlit.data.loading.batch import Batch, SideInputBuilder
from vlit.data.loading.transforms import ImageSpec, pixel_values
from vlit.data.prompting.chat_templates import ChatTemplate, Segment
from vlit.errors import VlitError

IGNORE_INDEX = -100


@dataclass
class Example:
    """One encoded conversation: ids with placeholders expanded, labels (-100 where not learned)."""

    input_ids: list[int]
    labels: list[int]
    images: list[ImageRef] = field(default_factory=list)
    side: dict[str, Any] = field(default_factory=dict)
    """Each declared side input's encoded value (only for a conversation with images)."""

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Processor:
    tokenizer: PreTrainedTokenizerBase
    template: ChatTemplate
    image_spec: ImageSpec
    num_image_tokens: int
    image_token_id: int
    side_inputs: dict[str, SideInputBuilder] = field(default_factory=dict)
    """What the connector reads beside the image features (`Connector.side_inputs()`), by name."""
    system_prompt: str | None = None
    split_at_images: bool = False
    """Tokenize the text between image markers piece by piece (LLaVA's original rule; see `_tokenize`)."""
    seq2seq: bool = False
    """An encoder-decoder LLM: `input_ids` are the encoder's (prompt and images), `labels` the decoder's (the
    last answer), of their own length."""
    max_length: int | None = None
    image_root: Path | None = None

    def render(self, conversation: Conversation, add_generation_prompt: bool = False) -> str:
        """The prompt text, `<image>` markers unexpanded (what `vlit info` shows)."""
        segments = self.template.render(conversation, add_generation_prompt, self.system_prompt)
        return "".join(s.text for s in segments)

    def encode(self, conversation: Conversation, add_generation_prompt: bool = False) -> Example:
        where = f"conversation {conversation.id}" if conversation.id is not None else "conversation"
        try:
            conversation.check()
        except ValueError as e:
            raise VlitError(f"{where}: {e}") from None
        segments = self.template.render(conversation, add_generation_prompt, self.system_prompt)
        target: list[int] | None = None
        if self.seq2seq:
            segments, target = self._decoder_target(segments)
        text, spans, pos = "", [], 0
        for s in segments:
            if s.learned:
                spans.append((pos, pos + len(s.text)))
            text += s.text
            pos += len(s.text)
        tokens, offsets = self._tokenize(text)
        ids, labels = [], []
        for token, (start, end) in zip(tokens, offsets, strict=True):
            if token == self.image_token_id:
                ids += [token] * self.num_image_tokens
                labels += [IGNORE_INDEX] * self.num_image_tokens
                continue
            # A token is learned when it overlaps an assistant span (a BPE token may straddle the boundary).
            learned = end > start and any(start < b and end > a for a, b in spans)
            ids.append(token)
            labels.append(token if learned else IGNORE_INDEX)
        found = ids.count(self.image_token_id) // max(self.num_image_tokens, 1)
        if found != len(conversation.images):
            raise VlitError(f"{where}: {len(conversation.images)} image(s) but the tokenized prompt holds "
                            f"{found} image marker(s)")
        if self.max_length is not None and len(ids) > self.max_length:
            if self.image_token_id in ids[self.max_length:]:
                raise VlitError(f"{where}: {len(ids)} tokens; truncating to max_length {self.max_length} "
                                "would cut an image")
            ends = self.seq2seq and ids[-1] == self.tokenizer.eos_token_id
            ids, labels = ids[: self.max_length], labels[: self.max_length]
            if ends:
                # T5's encoder text ends with `</s>`; transformers' processor and LAVIS truncate the text and keep
                # it (`max_length - num_query_tokens` to the tokenizer, `truncation=True`).
                ids[-1] = self.tokenizer.eos_token_id
        side = {name: b.encode(conversation) for name, b in self.side_inputs.items()} if conversation.images else {}
        return Example(ids, labels if target is None else target, list(conversation.images), side)

    def _decoder_target(self, segments: list[Segment]) -> tuple[list[Segment], list[int]]:
        """An encoder-decoder LLM's two inputs from one rendered conversation: the encoder reads everything up
        to the last answer (earlier turns, answers included, are history), the decoder learns that answer and
        its end token (LAVIS tokenizes the answer on its own: `t5_tokenizer(text_output)`). With no answer at
        the end (a generation prompt) the decoder has nothing to learn."""
        last = max((i for i, s in enumerate(segments) if s.learned), default=None)
        if last is None or any(s.text.strip() for s in segments[last + 1:] if not s.learned):
            return [Segment(s.text) for s in segments], []
        answer = segments[last].text.removeprefix(self.template.answer_prefix)
        # The end token is in the text (the template's EOS): special tokens are not added again.
        target = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        return [Segment(s.text) for s in segments[:last]], list(target)

    def _tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of the rendered text and each token's character span in it (image tokens included).

        Three published rules: transformers' processors tokenize the prompt at once; BLIP-2 / InstructBLIP put
        the image tokens before BOS and tokenize the text after them on its own; LLaVA's original code
        (`tokenizer_image_token`) tokenizes the text between images piece by piece, so a SentencePiece
        tokenizer starts the text after an image with a word mark (`▁`), as LLaVA's checkpoints were trained.
        """
        bos = not self.template.renders_bos
        if self.template.images_before_bos:
            lead = 0
            while text.startswith(IMAGE_TOKEN, lead * len(IMAGE_TOKEN)):
                lead += 1
            ids, offsets = self._encode(text[lead * len(IMAGE_TOKEN):], bos, lead * len(IMAGE_TOKEN))
            return [self.image_token_id] * lead + ids, [(0, 0)] * lead + offsets
        if not self.split_at_images:
            return self._encode(text, bos, 0)
        ids, offsets, start = [], [], 0
        for i, piece in enumerate(text.split(IMAGE_TOKEN)):
            if i:
                ids.append(self.image_token_id)
                offsets.append((start, start + len(IMAGE_TOKEN)))
                start += len(IMAGE_TOKEN)
            piece_ids, piece_offsets = self._encode(piece, bos and i == 0, start)
            ids += piece_ids
            offsets += piece_offsets
            start += len(piece)
        return ids, offsets

    def _encode(self, text: str, special: bool, shift: int) -> tuple[list[int], list[tuple[int, int]]]:
        if not text:
            return [], []
        enc = self.tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
        return list(enc["input_ids"]), [(a + shift, b + shift) for a, b in enc["offset_mapping"]]

    def pixels(self, images: list[ImageRef]) -> torch.Tensor:
        """float[I, 3, S, S] for image references (paths resolved against `image_root`)."""
        from vlit.data.reading.images import load_image

        return torch.stack([pixel_values(load_image(ref, self.image_root), self.image_spec) for ref in images])

    def collate(self, examples: list[Example], padding_side: str = "right", with_pixels: bool = True,
                with_labels: bool = True) -> Batch:
        """Pad a batch. Right padding for training; left padding for generation, so every prompt ends at the
        last position. Pixels are decoded only `with_pixels` (not when features come from a cache)."""
        length = max(len(e) for e in examples)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(examples), length), pad, dtype=torch.long)
        # A decoder's labels have their own length and are always right-padded (they are not a prompt).
        width = max(len(e.labels) for e in examples) if self.seq2seq else length
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(examples), length), dtype=torch.long)
        for i, e in enumerate(examples):
            sl = slice(length - len(e), length) if padding_side == "left" else slice(0, len(e))
            ids[i, sl] = torch.tensor(e.input_ids)
            labels[i, slice(0, len(e.labels)) if self.seq2seq else sl] = torch.tensor(e.labels, dtype=torch.long)
            mask[i, sl] = 1
        images = [ref for e in examples for ref in e.images]
        side = {}
        if images:
            side = {name: builder.collate([e.side[name] for e in examples for _ in e.images])
                    for name, builder in self.side_inputs.items()}
        # A seq2seq generation prompt has no decoder labels at all (not an empty [B, 0] the LLM cannot shift).
        keep = with_labels and labels.shape[1] > 0
        return Batch(ids, mask, labels if keep else None, images,
                     self.pixels(images) if with_pixels and images else None, None, side)

    def __call__(self, conversations: list[Conversation], add_generation_prompt: bool = False,
                 padding_side: str | None = None) -> Batch:
        examples = [self.encode(c, add_generation_prompt) for c in conversations]
        side = padding_side or ("left" if add_generation_prompt else "right")
        return self.collate(examples, side)
