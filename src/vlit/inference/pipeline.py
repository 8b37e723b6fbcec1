"""The inference pipeline: conversations in, answers out (batched, streamed, multi-turn).

Prompts are left-padded so every one ends at the last position; transformers derives position ids from the
attention mask, so a padded prompt sees exactly the positions it would see alone and batched greedy output is
token-identical to one-at-a-time output. Vision features come from a per-pipeline `FeatureCache`, so later
turns of a chat never re-encode their image.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria, TextIteratorStreamer

from vlit.data.conversation import Conversation
from vlit.data.loading.batch import Batch
from vlit.data.loading.processor import Example, Processor
from vlit.errors import VlitError
from vlit.inference.candidates import require_user_turn_last
from vlit.inference.logits import penalties
from vlit.inference.options import GenerationOptions
from vlit.inference.ranking import Normalize, RankResult, rank_letters_many, rank_many
from vlit.inference.stopping import Cancel, CancelRows, StopCutter, cut_at_stop
from vlit.models.feature_cache import FeatureCache
from vlit.models.vlm import VisionLanguageModel

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
Prompt = Conversation | Example
"""A conversation to answer, or its generation prompt encoded already (`Pipeline.encode`, or the same call on a
copy of the processor: a server tokenizes on its request threads, never on the thread that runs the model)."""


class Pipeline:
    """Answers conversations with a VisionLanguageModel (put in eval mode)."""

    def __init__(self, model: VisionLanguageModel, processor: Processor, feature_cache_size: int = 32,
                 meta: dict | None = None):
        self.model = model.eval()
        self.processor = processor
        #: What the checkpoint recorded about its training (e.g. `trained_parts`).
        self.meta = dict(meta or {})
        self.features = FeatureCache(model, processor, feature_cache_size)
        self._stop_criteria: dict[tuple[str, ...], StopStringCriteria] = {}

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None) -> Pipeline:
        """Load a checkpoint folder written by `save_model`; `dtype` casts the whole model (e.g. bfloat16)."""
        from vlit.models.saving import load_model, read_checkpoint_config

        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise VlitError(f"dtype: {dtype!r} unknown (have: {', '.join(DTYPES)})")
            dtype = DTYPES[dtype]
        device = _device(device)
        model, processor = load_model(folder)
        return cls(model.to(device=device, dtype=dtype), processor, meta=read_checkpoint_config(folder)[1])

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def stop_strings(self, options: GenerationOptions) -> tuple[str, ...]:
        """The caller's stop strings, the template's and the tokenizer's eos, without repeats."""
        stops = (*options.stop, *self.processor.template.stop_strings, self.tokenizer.eos_token or "")
        return tuple(dict.fromkeys(s for s in stops if s))

    def encode(self, conversation: Conversation) -> Example:
        """The generation prompt of a conversation that ends with a user turn."""
        require_user_turn_last(conversation, "generate an answer")
        return self.processor.encode(conversation, add_generation_prompt=True)

    def inputs(self, prompts: Sequence[Prompt]) -> Batch:
        """Left-padded generation inputs on the model's device, images as (cached) features."""
        examples = [p if isinstance(p, Example) else self.encode(p) for p in prompts]
        batch = self.processor.collate(examples, padding_side="left", with_pixels=False, with_labels=False)
        return replace(batch.to(self.model.device), image_features=self.features.features(batch.images))

    @property
    def end_ids(self) -> tuple[int, ...]:
        """The LLM's end-of-sequence ids: an answer ends before them."""
        eos = self.model.llm.generation_config.eos_token_id
        return (eos,) if isinstance(eos, int) else tuple(eos or ())

    def _generate_kwargs(self, options: GenerationOptions, stop_criterion: StopStringCriteria | None = None,
                         more: Sequence[StoppingCriteria] = ()) -> dict:
        stops = stop_criterion if stop_criterion is not None else self._stops(options)
        ends = (*self.end_ids, *options.stop_token_ids)
        return {**options.generate_kwargs(), "stopping_criteria": StoppingCriteriaList([stops, *more]),
                "logits_processor": penalties(options, ends, device=self.model.device), "eos_token_id": list(ends)}

    def _stops(self, options: GenerationOptions) -> StopStringCriteria:
        """transformers' stop-string criterion, built once per set of stop strings: building it scans the
        whole vocabulary (about half a second), and `generate(stop_strings=...)` rebuilds it every call."""
        stops = self.stop_strings(options)
        if stops not in self._stop_criteria:
            if len(self._stop_criteria) >= 8:
                self._stop_criteria.pop(next(iter(self._stop_criteria)))
            self._stop_criteria[stops] = StopStringCriteria(self.tokenizer, list(stops))
        return self._stop_criteria[stops]

    def generate_ids(self, conversations: Sequence[Prompt], stop_criterion: StopStringCriteria | None = None,
                     cancelled: Sequence[threading.Event] | None = None, **generation) -> list[list[int]]:
        """The new token ids of each answer, up to (without) its end-of-sequence token; one batched call.

        `stop_criterion` is the options' stop strings compiled already (transformers' `StopStringCriteria` over
        `stop_strings(options)`), as a server compiles them off the thread that runs the model. `cancelled`
        holds an event per conversation: setting one ends that row at the next decoding step (its client left)
        and leaves the other rows as they were."""
        options = GenerationOptions.make(**generation)
        if not conversations:
            return []
        inputs = self.inputs(conversations)
        more = [CancelRows(cancelled)] if cancelled is not None else []
        with _seeded(options.seed):
            out = self.model.generate(**inputs.model_inputs(), **self._generate_kwargs(options, stop_criterion, more))
        return [self._trim(row, options) for row in out.tolist()]

    def _trim(self, ids: list[int], options: GenerationOptions) -> list[int]:
        ends = {*self.end_ids, *options.stop_token_ids}
        cut = next((i for i, t in enumerate(ids) if t in ends), len(ids))
        ids = ids[:cut]
        pad = self.tokenizer.pad_token_id
        while ids and ids[-1] == pad:  # rows that stopped early on a stop string are padded to the longest
            ids.pop()
        return ids

    def decode(self, ids: list[int], options: GenerationOptions | None = None) -> str:
        """Answer text: decoded, cut at the first stop string, stripped."""
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return cut_at_stop(text, self.stop_strings(options or GenerationOptions())).strip()

    def generate(self, conversations: list[Conversation], **generation) -> list[str]:
        """One answer per conversation, generated as one left-padded batch."""
        options = GenerationOptions.make(**generation)
        return [self.decode(ids, options) for ids in self.generate_ids(conversations, **generation)]

    def chat(self, conversation: Conversation, **generation) -> str:
        """The assistant's next answer to a conversation that ends with a user turn."""
        return self.generate([conversation], **generation)[0]

    def stream(self, conversation: Prompt, stop_criterion: StopStringCriteria | None = None,
               **generation) -> Iterator[str]:
        """The next answer as text pieces while it is generated (greedy or sampling, not beam search);
        joined, the pieces equal `chat`'s answer. Generation runs in a thread and stops as soon as the
        caller stops iterating (e.g. a client that went away). `stop_criterion` as in `generate_ids`."""
        options = GenerationOptions.make(**generation)
        if options.num_beams > 1:
            raise VlitError("num_beams: streaming shows one sequence; beam search cannot stream")
        inputs = self.inputs([conversation])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=False)
        cancel = Cancel()
        kwargs = self._generate_kwargs(options, stop_criterion, [cancel])
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with _seeded(options.seed):
                    self.model.generate(**inputs.model_inputs(), **kwargs, streamer=streamer)
            except BaseException as e:  # re-raised in the caller's thread, which would otherwise wait forever
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        cutter = StopCutter(self.stop_strings(options))
        try:
            for chunk in streamer:
                if piece := cutter.feed(chunk):
                    yield piece
        finally:
            cancel.event.set()
            thread.join()
        if failure:
            raise failure[0]
        if rest := cutter.finish():
            yield rest

    def rank(self, conversation: Conversation, candidates: list[str], normalize: Normalize = "sum",
             include_end: bool = True) -> RankResult:
        """Candidate answers scored by log-likelihood (see `vlit.inference.ranking.rank`)."""
        return self.rank_many([conversation], [candidates], normalize, include_end)[0]

    def rank_many(self, conversations: Sequence[Conversation], candidates: Sequence[list[str]],
                  normalize: Normalize = "sum", include_end: bool = True) -> list[RankResult]:
        """`rank` for many conversations, their prompts in one batch (`vlit.inference.ranking.rank_many`)."""
        features = self.features.features([ref for c in conversations for ref in c.images])
        return rank_many(self.model, self.processor, conversations, candidates, normalize, include_end, features)

    def rank_letters(self, conversation: Conversation,
                     letters: tuple[str, ...] = ("A", "B", "C", "D")) -> RankResult:
        """Option letters scored by the next-token distribution (`vlit.inference.ranking.rank_letters`)."""
        return self.rank_letters_many([conversation], letters)[0]

    def rank_letters_many(self, conversations: Sequence[Conversation],
                          letters: tuple[str, ...] = ("A", "B", "C", "D")) -> list[RankResult]:
        """`rank_letters` for many conversations, their prompts in one batch."""
        features = self.features.features([ref for c in conversations for ref in c.images])
        return rank_letters_many(self.model, self.processor, conversations, letters, features)


def _device(device: str | torch.device | None) -> torch.device | None:
    """A device the model can move to, or a VlitError naming it."""
    if device is None:
        return None
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError):
        raise VlitError(f"device: {str(device)!r} is not a device (e.g. cpu, cuda, cuda:1, mps)") from None
    try:
        torch.empty(0, device=device)  # backends not built in or absent fail here with assorted errors
    except (AssertionError, RuntimeError):
        raise VlitError(f"device: {device} is not available on this machine") from None
    return device


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed sampling without touching the caller's global RNG state."""
    if seed is None:
        yield
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
