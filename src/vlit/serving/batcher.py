"""The request queue: one worker thread owns the model and answers waiting requests in shared batches.

Requests with equal generation options share one left-padded `Pipeline.generate_ids` call (the pipeline makes
batched greedy output token-identical to one-at-a-time). A sampled request with a seed runs alone: in a batch
its random draws would depend on its neighbours, and the seed promises a repeatable answer. Streamed
requests run alone through `Pipeline.stream`, in this same thread, so the model is never used from two
threads at once. A batch that fails is retried one request at a time, so one bad request fails alone.

The worker only runs the model: the API hands it prompts tokenized and stop strings compiled on request threads
(`PromptEncoder`). A job cancelled while it runs (its client left) stops at the next decoding step, its own row
only when it shares a batch.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from transformers import StopStringCriteria

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import Example
from vlit.errors import VlitError
from vlit.inference.pipeline import GenerationOptions, Pipeline, Prompt
from vlit.inference.stopping import cut_at_stop
from vlit.serving.errors import APIError, not_ready, overloaded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


@dataclass(eq=False)
class Job:
    """One request in the queue; `future` resolves to its `Completion`. With `on_piece` it streams: each text
    piece is passed to `on_piece` (from the worker thread) as it is generated. `example` is the conversation's
    prompt tokenized already and `stop_criterion` its options' stop strings compiled (`Pipeline.generate_ids`);
    without them the worker does both."""

    conversation: Conversation
    options: GenerationOptions
    on_piece: Callable[[str], None] | None = None
    example: Example | None = None
    stop_criterion: StopStringCriteria | None = None
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def shareable(self) -> bool:
        """Whether the job may share a batch (with jobs of equal options)."""
        return self.on_piece is None and (not self.options.do_sample or self.options.seed is None)

    @property
    def prompt(self) -> Prompt:
        return self.conversation if self.example is None else self.example

    def cancel(self) -> None:
        """Drop the job if it still waits; stop generating its answer if it runs (the client went away)."""
        self.cancelled.set()
        self.future.cancel()


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    batched_requests: int = 0
    """Requests answered in a batch of more than one."""
    largest_batch: int = 0
    streams: int = 0
    cancelled: int = 0
    """Requests whose client left before the answer was done (dropped from the queue, or stopped)."""


class Batcher:
    def __init__(self, pipe: Pipeline, max_batch_size: int = 8, batch_wait_s: float = 0.01, max_queue: int = 64,
                 max_prompt_tokens: int | None = None):
        self.pipe = pipe
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self.max_queue = max_queue
        self.max_prompt_tokens = max_prompt_tokens
        self.stats = BatchStats()
        self._pending: list[Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def waiting(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, conversation: Conversation, options: GenerationOptions,
               on_piece: Callable[[str], None] | None = None, example: Example | None = None,
               stop_criterion: StopStringCriteria | None = None) -> Job:
        """Queue a request; APIError 503 when the queue is full or the worker has stopped."""
        job = Job(conversation, options, on_piece, example, stop_criterion)
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
        """Let the running batch finish, then fail whatever still waits with 503."""
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
        while (jobs := self._next_jobs()) is not None:
            live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            try:
                self._answer(live)
            except BaseException as e:  # never leave a client waiting forever on a future
                log.exception("batch worker failed")
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(e)
            self.stats.cancelled += len(jobs) - len(live)

    def _next_jobs(self) -> list[Job] | None:
        """The oldest waiting job and the jobs that may share its batch, waiting up to `batch_wait_s` from its
        arrival for the batch to fill; None once stopped."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            first = self._pending[0]
            deadline = first.arrived + self.batch_wait_s
            while True:
                batch = [first]
                if first.shareable:
                    batch = [j for j in self._pending if j.shareable and j.options == first.options]
                    batch = batch[: self.max_batch_size]
                remaining = deadline - time.monotonic()
                if not first.shareable or len(batch) >= self.max_batch_size or remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            if self._closed:  # `stop` has failed every waiting job, these included
                return None
            for job in batch:
                self._pending.remove(job)
            return batch

    def _answer(self, jobs: list[Job]) -> None:
        ready = []
        for job in jobs:
            try:
                ready.append((job, self._prompt_tokens(job)))
            except Exception as e:
                job.future.set_exception(_client_error(e))
        if not ready:
            return
        if ready[0][0].on_piece is not None:
            self._stream(*ready[0])
        else:
            self._generate(ready)

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

    def _generate(self, ready: list[tuple[Job, int]]) -> None:
        options = ready[0][0].options
        jobs = [job for job, _ in ready]
        try:
            # Jobs of one batch have equal options, so any one's compiled stop strings serve them all.
            rows = self.pipe.generate_ids([job.prompt for job in jobs], stop_criterion=jobs[0].stop_criterion,
                                          cancelled=[job.cancelled for job in jobs], **dataclasses.asdict(options))
        except Exception as e:
            if len(ready) > 1:
                log.warning("a batch of %d failed (%s); answering its requests one at a time", len(ready), e)
                for one in ready:
                    self._generate([one])
            else:
                ready[0][0].future.set_exception(_client_error(e))
            return
        self._count(len(ready))
        self.stats.cancelled += sum(job.cancelled.is_set() for job in jobs)
        stops = self.pipe.stop_strings(options)
        for (job, prompt_tokens), ids in zip(ready, rows, strict=True):
            raw = self.pipe.tokenizer.decode(ids, skip_special_tokens=False)
            stopped = len(ids) < options.max_new_tokens or cut_at_stop(raw, stops) != raw
            text = self.pipe.decode(ids, options)
            job.future.set_result(Completion(text, prompt_tokens, len(ids), "stop" if stopped else "length"))

    def _stream(self, job: Job, prompt_tokens: int) -> None:
        pieces = []
        stream = self.pipe.stream(job.prompt, stop_criterion=job.stop_criterion, **dataclasses.asdict(job.options))
        try:
            for piece in stream:
                if job.cancelled.is_set():
                    self.stats.cancelled += 1
                    break
                pieces.append(piece)
                job.on_piece(piece)
        except Exception as e:
            job.future.set_exception(_client_error(e))
            return
        finally:
            stream.close()  # stops generation at once when the client went away
        self._count(1)
        self.stats.streams += 1
        text = "".join(pieces)
        # Pipeline.stream yields text, not ids: the answer is re-tokenized to count it, which can differ by a
        # token or so from what was generated (tokenization is not unique), and "length" is judged on that.
        count = len(self.pipe.tokenizer.encode(text, add_special_tokens=False))
        finish = "length" if count >= job.options.max_new_tokens else "stop"
        job.future.set_result(Completion(text, prompt_tokens, count, finish))

    def _count(self, size: int) -> None:
        self.stats.requests += size
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, size)
        if size > 1:
            self.stats.batched_requests += size


def _client_error(error: Exception) -> Exception:
    """A VlitError from the pipeline is about the request (400); anything else stays a server error."""
    if isinstance(error, VlitError) and not isinstance(error, APIError):
        return APIError(400, str(error))
    if not isinstance(error, VlitError):
        log.error("generation failed", exc_info=error)
    return error
