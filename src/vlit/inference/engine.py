"""Continuous batching: answers decoded one step at a time, in a batch that requests join and leave.

`Engine.join` prefills a new answer's prompt alone (from the longest cached prefix of an earlier turn, images
from the feature cache); the next `Engine.step` takes it into the running batch, whose every row then gets one
token per step; a row leaves as soon as its answer ends, and its KV cache is kept for the conversation's next
turn (`PrefixCache`). No request waits for others to finish, and none waits for company.

Each row decodes on its own terms: its options' penalties and sampling warpers (`vlit.inference.logits`), its
grammar (`vlit.inference.constraints`), its own seeded random generator (so a seeded answer repeats whoever
shares the batch), its stop strings and stop tokens. The answer's ids are counted as generated, never
re-tokenized, so usage and the `length`/`stop` decision are exact; log-probabilities are the model's own
(before penalties and warpers), so they sum to the answer's log-likelihood.

Greedy rows give the tokens they give alone: padding is masked and positions count each row's own tokens
(`RowCache`). Encoder-decoder LLMs (T5) and LLMs whose cache cannot be padded (sliding windows) decode one
answer at a time through the same loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from vlit.data.loading.batch import Batch
from vlit.data.loading.processor import Example
from vlit.inference.constraints import Constraint
from vlit.inference.kv_rows import RowCache, mergeable
from vlit.inference.logits import penalties, warpers
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.inference.prefix_cache import PrefixCache
from vlit.inference.stopping import StopCutter, cut_at_stop
from vlit.models.feature_cache import image_key
from vlit.models.packing import real_positions


@dataclass(frozen=True)
class TokenLogprob:
    """One answer token's log-probability, and the `top` most likely tokens at its place with theirs."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(eq=False)
class Sequence:
    """One answer to decode. `grammar` is a compiled grammar (`Grammars`) the answer must match;
    `top_logprobs` asks for log-probabilities (with that many alternatives; None: none); `on_text` receives the
    answer's text pieces as they come, with the log-probabilities of the tokens since the last piece.
    `cancelled` stops it at the next step. The engine fills the rest."""

    example: Example
    options: GenerationOptions
    grammar: object | None = None
    top_logprobs: int | None = None
    on_text: Callable[[str, list[TokenLogprob]], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    """The answer's token ids, as generated (without the end-of-sequence or stop token)."""
    logprobs: list[TokenLogprob] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    """"stop", "length", "cancelled" or "error"."""
    cached_tokens: int = 0
    """Prompt tokens whose KV cache came from an earlier turn."""
    error: Exception | None = None
    """Why the sequence ended with `finish_reason` "error" (its prefill failed)."""


class _Row:
    """A sequence's decoding state."""

    def __init__(self, seq: Sequence, pipe: Pipeline, vocab_size: int):
        options = seq.options
        self.seq = seq
        self.ends = {*pipe.end_ids, *options.stop_token_ids}
        self.stops = pipe.stop_strings(options)
        self.penalties = penalties(options, sorted(self.ends), device=pipe.model.device)
        self.warpers = warpers(options)
        self.constraint = Constraint(seq.grammar, vocab_size) if seq.grammar is not None else None
        self.generator = None
        if options.do_sample and options.seed is not None:
            self.generator = torch.Generator(pipe.model.device).manual_seed(options.seed % 2**64)
        self.tokens: list[int] = []
        """Every token chosen, the end token included (the last one has not been fed to the model yet)."""
        self.cutter = StopCutter(self.stops)
        self.shown = ""
        self.sent = 0
        self.keys: tuple[str, ...] = ()
        """The prompt's image keys (`image_key`), which the prefix cache compares."""
        self.state: dict = {}
        """An encoder-decoder's own cache and encoder output (rows of a decoder-only LLM share `RowCache`)."""

    @property
    def plain(self) -> bool:
        """Greedy with nothing to change the scores: the batch's argmax is its token."""
        return not (self.penalties or self.constraint or self.seq.options.do_sample)


class Engine:
    """Decodes up to `max_rows` answers at once (one for encoder-decoders and unpaddable caches); keeps the KV
    caches of `prefix_cache_size` finished answers for the next turns. Used from one thread."""

    def __init__(self, pipe: Pipeline, max_rows: int = 8, prefix_cache_size: int = 8):
        self.pipe = pipe
        self.model = pipe.model
        self.vocab_size = self.model.llm.get_output_embeddings().weight.shape[0]
        self.seq2seq = self.model.seq2seq
        paddable = not self.seq2seq and mergeable(DynamicCache(config=self.model.llm.config))
        self.capacity = max_rows if paddable else 1
        reusable = paddable and not self.model.side_input_names and prefix_cache_size > 0
        self.prefixes = PrefixCache(prefix_cache_size, self.model.image_token_id,
                                    self.model.num_image_tokens) if reusable else None
        self.rows: list[_Row] = []
        self.kv = RowCache()
        self._queued: list[tuple[_Row, int, object]] = []
        """Rows to prefill at the next step, with the length and cache of their cached prefix."""
        self._joining: list[tuple[_Row, torch.Tensor, object, torch.Tensor | None]] = []
        """Prefilled rows with their first logits float[1, V]; the first row of a prefill batch carries its
        cache and attention mask (the batch's rows follow it in order)."""

    def __len__(self) -> int:
        return len(self.rows) + len(self._joining) + len(self._queued)

    @property
    def room(self) -> int:
        return self.capacity - len(self)

    @torch.no_grad()
    def join(self, seq: Sequence) -> None:
        """Take `seq` in: its prompt is prefilled at the next `step` (with the others that joined since, in one
        batch), and it decodes from there on."""
        row = _Row(seq, self.pipe, self.vocab_size)
        if self.seq2seq:
            batch = self.pipe.inputs([seq.example])
            row.state["mask"] = batch.attention_mask
            row.state["encoder"] = self.model.llm.get_encoder()(inputs_embeds=self._embeds(batch),
                                                                attention_mask=batch.attention_mask)
            start = torch.tensor([[self.model.llm.config.decoder_start_token_id]], device=self.model.device)
            self._joining.append((row, self._decode_one(row, start), None, None))
            return
        row.keys = tuple(image_key(ref, self.pipe.processor.image_root) for ref in seq.example.images)
        done, cache = self.prefixes.lookup(seq.example.input_ids, row.keys) if self.prefixes else (0, None)
        seq.cached_tokens = done
        self._queued.append((row, done, cache))

    def _prefill(self) -> None:
        """Prefill the queued prompts: those with a cached prefix one at a time from it, the others in one
        left-padded batch (positions count real tokens, as in `Pipeline.generate_ids`)."""
        keep = {"logits_to_keep": 1} if self.model._keeps_logits else {}
        fresh = [row for row, done, _ in self._queued if not done]
        for row, done, cache in self._queued:
            if not done:
                continue
            batch = self.pipe.inputs([row.seq.example])
            ids = batch.input_ids
            out = self.model.llm(inputs_embeds=self._embeds(batch, done), attention_mask=torch.ones_like(ids),
                                 position_ids=torch.arange(done, ids.shape[1], device=ids.device)[None], cache=cache,
                                 use_cache=True, **keep)
            self._joining.append((row, out.logits[:, -1].float(), out.cache, torch.ones_like(ids)))
        if fresh:
            batch = self.pipe.inputs([row.seq.example for row in fresh])
            mask = batch.attention_mask
            out = self.model.llm(inputs_embeds=self._embeds(batch), attention_mask=mask, use_cache=True,
                                 position_ids=real_positions(mask), **keep)
            logits = out.logits[:, -1].float()
            self._joining += [(row, logits[i: i + 1], out.cache if i == 0 else None, mask if i == 0 else None)
                              for i, row in enumerate(fresh)]
        self._queued = []

    def _embeds(self, batch: Batch, done: int = 0) -> torch.Tensor:
        """The batch's embeddings from column `done` on (one row then), images that start before it left out."""
        features, ids = batch.image_features, batch.input_ids
        if done and features is not None:
            features = features[int((ids[0, :done] == self.model.image_token_id).sum()) // self.model.num_image_tokens:]
        return self.model.embed_multimodal(ids[:, done:], image_features=features, side=batch.side)

    def _decode_one(self, row: _Row, token: torch.Tensor) -> torch.Tensor:
        out = self.model.llm(encoder_outputs=row.state["encoder"], attention_mask=row.state["mask"],
                             decoder_input_ids=token, cache=row.state.get("cache"), use_cache=True)
        row.state["cache"] = out.cache
        return out.logits[:, -1].float()

    @torch.no_grad()
    def step(self) -> list[Sequence]:
        """One token for every row (joined rows enter here); returns the sequences that finished. A prefill that
        fails ends the sequences in it (`Sequence.error`), not the running ones."""
        logits = []
        if self.rows and self.seq2seq:
            logits = [self._decode_one(r, torch.tensor([[r.tokens[-1]]], device=self.model.device)) for r in self.rows]
        elif self.rows:
            last = torch.tensor([[r.tokens[-1]] for r in self.rows], device=self.model.device)
            out = self.model.llm(inputs_embeds=self.model.embed_multimodal(last), **self.kv.step_inputs())
            logits = [out.logits[:, -1].float()]
        failed = self._failed_prefill()
        for row, first, cache, mask in self._joining:
            self.rows.append(row)
            logits.append(first)
            if cache is not None:
                self.kv.extend(cache, mask)
        self._joining = []
        if not self.rows:
            return failed
        finished = self._choose(logits[0] if len(logits) == 1 else torch.cat(logits))
        kept = [i for i, r in enumerate(self.rows) if r.seq.finish_reason is None]
        if self.prefixes is not None:
            for i in (i for i, r in enumerate(self.rows) if r.seq.finish_reason in ("stop", "length")):
                row = self.rows[i]
                self.prefixes.store([*row.seq.example.input_ids, *row.tokens[:-1]], row.keys, self.kv.row(i))
        if len(kept) < len(self.rows):
            if not self.seq2seq:
                self.kv.keep(kept)
            self.rows = [self.rows[i] for i in kept]
        return failed + finished

    def _failed_prefill(self) -> list[Sequence]:
        if not self._queued:
            return []
        queued = [row.seq for row, _, _ in self._queued]
        try:
            self._prefill()
        except Exception as e:  # about these prompts (the running rows have taken their step already)
            self._queued, self._joining = [], [j for j in self._joining if j[0].seq not in queued]
            for seq in queued:
                seq.error, seq.finish_reason = e, "error"
            return [seq for seq in queued if seq.finish_reason == "error"]
        return []

    def _choose(self, logits: torch.Tensor) -> list[Sequence]:
        """float[B, V] -> each row's next token, following its options; returns the sequences that ended."""
        raw = logits.log_softmax(-1) if any(r.seq.top_logprobs is not None for r in self.rows) else None
        logits[:, self.model.image_token_id] = -float("inf")  # an input slot, never a word to say
        greedy = logits.argmax(-1).tolist()
        finished = []
        for i, row in enumerate(self.rows):
            token = greedy[i] if row.plain else self._pick(row, logits[i: i + 1])
            entry = None
            if row.seq.top_logprobs is not None:
                top = raw[i].topk(row.seq.top_logprobs) if row.seq.top_logprobs else None
                alternatives = tuple(zip(top.indices.tolist(), top.values.tolist(), strict=True)) if top else ()
                entry = TokenLogprob(token, float(raw[i, token]), alternatives)
            if self._advance(row, token, entry):
                finished.append(row.seq)
        return finished

    def _pick(self, row: _Row, scores: torch.Tensor) -> int:
        answer = torch.tensor([row.seq.ids], dtype=torch.long, device=scores.device)
        scores = row.penalties(answer, scores)
        if row.constraint is not None:
            scores = row.constraint.mask(scores)
        if not row.seq.options.do_sample:
            return int(scores.argmax(-1))
        probs = row.warpers(answer, scores).softmax(-1)
        return int(torch.multinomial(probs, 1, generator=row.generator))

    def _advance(self, row: _Row, token: int, entry: TokenLogprob | None) -> bool:
        """Take `token` into the row's answer; True when the answer has ended."""
        seq = row.seq
        row.tokens.append(token)
        if row.constraint is not None:
            row.constraint.accept(token)
        ended = token in row.ends
        if not ended:
            seq.ids.append(token)
            if entry is not None:
                seq.logprobs.append(entry)
        raw = self.pipe.tokenizer.decode(seq.ids, skip_special_tokens=False)
        if ended or cut_at_stop(raw, row.stops) != raw or (row.constraint is not None and row.constraint.complete):
            seq.finish_reason = "stop"
        elif len(seq.ids) >= seq.options.max_new_tokens:
            seq.finish_reason = "length"
        elif seq.cancelled.is_set():
            seq.finish_reason = "cancelled"
        if seq.finish_reason is None and raw.endswith("\ufffd"):
            return False  # a character cut between tokens: shown once its last byte comes
        self._show(row, raw)
        if seq.finish_reason is None:
            return False
        seq.text = self.pipe.decode(seq.ids, seq.options)
        if seq.on_text is not None:
            rest = row.cutter.finish()
            if rest or row.sent < len(seq.logprobs):
                seq.on_text(rest, seq.logprobs[row.sent:])
        return True

    def _show(self, row: _Row, raw: str) -> None:
        """Pass the text decoded since the last piece (cut at stop strings) to a streaming sequence."""
        seq = row.seq
        if seq.on_text is None:
            return
        same = next((i for i, (a, b) in enumerate(zip(raw, row.shown, strict=False)) if a != b),
                    min(len(raw), len(row.shown)))
        piece = row.cutter.feed(raw[same:])
        row.shown = raw
        if piece:
            seq.on_text(piece, seq.logprobs[row.sent:])
            row.sent = len(seq.logprobs)
