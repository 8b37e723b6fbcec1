"""The request queue: one worker thread owns the model and decodes every running answer in one batch.

Continuous batching (`vlit.inference.engine.Engine`): a request joins the running batch at the next decoding
step, whatever its options, and leaves it as soon as its answer ends, so nobody waits for a batch of equal
options to finish, nor for company. Ranked answers (`guided_choice`) run between two steps. `static=True`
keeps the older policy for comparison (`benchmarks/serving.py`): a batch of requests with equal options starts
when the previous one has finished, after waiting up to `batch_wait_s` to fill.

The worker only runs the model: the API hands it prompts tokenized and grammars compiled on request threads
(`PromptEncoder`). A job cancelled while it runs (its client left) stops at the next decoding step. A request
that fails to start fails alone; a decoding step that fails fails the answers in it, and the worker goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import Example
from vlit.errors import VlitError
from vlit.inference.candidates import candidate_ids
from vlit.inference.engine import Engine, Sequence, TokenLogprob
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline
from vlit.serving.errors import APIError, not_ready, overloaded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    """The answer's generated ids, counted (never its text re-tokenized)."""
    finish_reason: str  # "stop" or "length"
    logprobs: list[TokenLogprob] | None = None
    scores: dict[str, float] | None = None
    """Ranked answers: each choice's log-likelihood, best first."""
    cached_tokens: int = 0


@dataclass(eq=False)
class Job:
    """One request in the queue; `future` resolves to its `Completion`. With `on_piece` it streams: each text
    piece is passed to `on_piece` (from the worker thread) with the log-probabilities of its tokens. `example`
    is the prompt tokenized already (the worker tokenizes it otherwise); `grammar` a compiled grammar, `choices`
    answers to rank instead of decoding, `top_logprobs` as in `Sequence`."""

    conversation: Conversation
    options: GenerationOptions
    on_piece: Callable[[str, list[TokenLogprob]], None] | None = None
    example: Example | None = None
    grammar: object | None = None
    choices: tuple[str, ...] | None = None
    top_logprobs: int | None = None
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default_factory=time.monotonic)
    prompt_tokens: int = 0
    shared: bool = False

    def cancel(self) -> None:
        """Drop the job if it still waits; stop generating its answer if it runs (the client went away)."""
        self.cancelled.set()
        self.future.cancel()


@dataclass
class BatchStats:
    requests: int = 0
    steps: int = 0
    """Decoding steps (one forward pass of the running batch each)."""
    batched_requests: int = 0
    """Requests that shared at least one step with another."""
    largest_batch: int = 0
    streams: int = 0
    ranked: int = 0
    cancelled: int = 0
    """Requests whose client left before the answer was done (dropped from the queue, or stopped)."""
    prefix_hits: int = 0
    """Prompts that started from the KV cache of an earlier turn (prefix caching)."""


class Batcher:
    def __init__(self, pipe: Pipeline, max_batch_size: int = 8, batch_wait_s: float = 0.01, max_queue: int = 64,
                 max_prompt_tokens: int | None = None, static: bool = False, prefix_cache_size: int = 8):
        self.pipe = pipe
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self.max_queue = max_queue
        self.max_prompt_tokens = max_prompt_tokens
        self.static = static
        self.prefix_cache_size = prefix_cache_size
        self._engine: Engine | None = None
        self.stats = BatchStats()
        self._pending: list[Job] = []
        self._running: dict[int, Job] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def engine(self) -> Engine:
        """Built by the worker when the first request comes (it reads the model's configuration)."""
        if self._engine is None:
            self._engine = Engine(self.pipe, self.max_batch_size, self.prefix_cache_size)
        return self._engine

    @property
    def waiting(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, conversation: Conversation, options: GenerationOptions, **more) -> Job:
        """Queue a request (`more`: the other `Job` fields); APIError 503 when the queue is full or the worker has
        stopped."""
        job = Job(conversation, options, **more)
        with self._cond:
            if self._closed:
                raise not_ready("the worker has stopped")
            if len(self._pending) >= self.max_queue:
                raise overloaded(len(self._pending))
            self._pending.append(job)
            self._cond.notify()
        return job

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vlit-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30) -> None:
        """Let the running answers finish, then fail whatever still waits with 503."""
        with self._cond:
            self._closed = True
            left, self._pending = self._pending, []
            self._cond.notify_all()
        for job in left:
            job.cancelled.set()
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(not_ready("the server is shutting down"))
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- the worker thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        while (jobs := self._admit()) is not None:
            for job in jobs:
                self._start(job)
            if self._decoding:
                self._step()

    def _admit(self) -> list[Job] | None:
        """The waiting jobs that may start now (none while the batch runs and nothing waits); None once stopped
        with nothing running."""
        with self._cond:
            while not self._closed and not self._pending and not self._decoding:
                self._cond.wait()
            if self._closed:
                return [] if self._decoding else None
            if not self.static:
                taken = self._pending[: self.engine.room]
            elif self._decoding or not self._pending:
                taken = []
            else:
                taken = self._static_batch()
            for job in taken:
                self._pending.remove(job)
            return taken

    @property
    def _decoding(self) -> bool:
        return self._engine is not None and len(self._engine) > 0

    def _static_batch(self) -> list[Job]:
        """The oldest job and those with equal options, after waiting up to `batch_wait_s` from its arrival for
        the batch to fill (streams and seeded samples alone, as the static batcher ran them)."""
        first = self._pending[0]
        alone = first.on_piece is not None or first.options.seed is not None
        deadline = first.arrived + self.batch_wait_s
        while True:
            batch = [first] if alone else [j for j in self._pending if j.on_piece is None and j.options.seed is None
                                           and j.options == first.options][: self.engine.room]
            remaining = deadline - time.monotonic()
            if alone or len(batch) >= self.engine.room or remaining <= 0 or self._closed:
                return batch
            self._cond.wait(remaining)

    def _start(self, job: Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            self.stats.cancelled += 1
            return
        try:
            job.prompt_tokens = self._prompt_tokens(job)
            if job.choices is not None:
                self._rank(job)
                return
            seq = Sequence(job.example, job.options, job.grammar, job.top_logprobs, job.on_piece, job.cancelled)
            self.engine.join(seq)
        except Exception as e:
            job.future.set_exception(_client_error(e))
            return
        self._running[id(seq)] = job

    def _prompt_tokens(self, job: Job) -> int:
        """The prompt's length with image tokens. A job that comes without its prompt is tokenized here, with
        the pipeline's own tokenizer, which only this thread uses: a fast tokenizer used from several threads
        at once can fail ("Already borrowed")."""
        if job.example is None:
            job.example = self.pipe.encode(job.conversation)
        count = len(job.example)
        if self.max_prompt_tokens is not None and count > self.max_prompt_tokens:
            raise APIError(400, f"messages: the prompt is {count} tokens (images included), over this server's "
                                f"limit of {self.max_prompt_tokens}", "messages", "context_length_exceeded")
        return count

    def _rank(self, job: Job) -> None:
        """A ranked answer: `Pipeline.rank`, the code path of `vlit ask --candidates`."""
        result = self.pipe.rank(job.conversation, list(job.choices))
        tokens = len(candidate_ids(self.pipe.processor, job.conversation, result.best))
        if job.on_piece is not None:
            job.on_piece(result.best, [])
        self.stats.ranked += 1
        self._count(job)
        job.future.set_result(Completion(result.best, job.prompt_tokens, tokens, "stop", None,
                                         dict(result.ranked())))

    def _step(self) -> None:
        size = len(self.engine)
        try:
            finished = self.engine.step()
        except Exception as e:  # the batch's state is unknown now: its answers fail, the next ones start afresh
            log.exception("a decoding step of %d answers failed", size)
            for job in self._running.values():
                job.future.set_exception(_client_error(e))
            self._running.clear()
            self._engine = None
            return
        self.stats.steps += 1
        self.stats.largest_batch = max(self.stats.largest_batch, size)
        if size > 1:
            for job in self._running.values():
                job.shared = True
        for seq in finished:
            job = self._running.pop(id(seq))
            self._finish(job, seq)

    def _finish(self, job: Job, seq: Sequence) -> None:
        if seq.error is not None:
            job.future.set_exception(_client_error(seq.error))
            return
        if seq.finish_reason == "cancelled":
            self.stats.cancelled += 1
        self.stats.prefix_hits += seq.cached_tokens > 0
        self.stats.streams += job.on_piece is not None
        self._count(job)
        logprobs = seq.logprobs if job.top_logprobs is not None else None
        job.future.set_result(Completion(seq.text, job.prompt_tokens, len(seq.ids), seq.finish_reason, logprobs,
                                         cached_tokens=seq.cached_tokens))

    def _count(self, job: Job) -> None:
        self.stats.requests += 1
        self.stats.batched_requests += job.shared


def _client_error(error: Exception) -> Exception:
    """A VlitError from the pipeline is about the request (400); anything else stays a server error."""
    if isinstance(error, VlitError) and not isinstance(error, APIError):
        return APIError(400, str(error))
    if not isinstance(error, VlitError):
        log.error("generation failed", exc_info=error)
    return error
