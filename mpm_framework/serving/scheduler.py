"""Continuous batching: one decode loop whose batch requests join and leave.

A single thread owns the model. Each iteration is one step boundary: requests
waiting in the queue join, every running row gets one token from
:func:`~mpm_framework.inference.generation.sample_step` (the sampler
``stack.chat`` uses), finished or cancelled rows leave through
``llm.reorder_state`` and the next ``llm.decode`` runs the rest.

Joining: the running rows take their next decode step, the joining requests
are prefilled together, and ``llm.merge_decode_states`` puts both decode states
into one batch (the LLaMA plugin left-pads the shorter KV cache under a zero
mask). An LLM that cannot merge (the contract's default returns None) gets the
fallback: the running rows are prefilled again together with the new ones, each
as its prompt followed by the tokens it generated so far (what ``decode`` had
fed it). Either way the tokens are the same; the arithmetic of a row may differ
from the one-request path in the last float bits, as it does between batch
sizes. A request alone in the batch goes through exactly the computation of
``stack.chat``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..contracts.llm import PivotLLM
from ..contracts.prompt import IGNORE_INDEX, PromptEncoding
from ..inference.chat import encode_pixels
from ..inference.generation import (
    GenerationConfig,
    RowState,
    StopStringChecker,
    decode_answer,
    end_token_ids,
    initial_seen,
    sample_step,
    seeded_generator,
)
from ..inference.streaming import TextStream
from .images import EncodingCache
from .metrics import Metrics

LOG = logging.getLogger("mpm.serve")

Sink = Callable[[str, Any], None]  # ("piece", str) | ("done", Completion) | ("error", str)


class QueueFull(Exception):
    """The waiting queue is at its bound (the client should retry later)."""


class ShuttingDown(Exception):
    """The server is draining and accepts no new work."""


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ChatJob:
    """One chat request as the decode loop sees it."""

    encoding: PromptEncoding
    config: GenerationConfig
    sink: Sink
    image_key: str | None = None
    pixels: torch.Tensor | None = None  # (3, H, W), needed when the encoding is not cached
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.monotonic)
    # set by the loop
    features: torch.Tensor | None = None
    row: RowState | None = None
    text: TextStream | None = None
    steps: int = 0

    def cancel(self) -> None:
        self.cancelled.set()


class Scheduler:
    """Owns the chat stack and runs the decode loop in a thread."""

    def __init__(self, stack: Any, cache: EncodingCache, metrics: Metrics, max_batch: int = 16,
                 max_queue: int = 64, join_every: int = 16) -> None:
        self.stack, self.llm = stack, stack.llm
        self.cache, self.metrics = cache, metrics
        self.max_batch, self.max_queue = max_batch, max_queue
        self.join_every = join_every
        self._steps_since_join = 0
        self._waiting: collections.deque[ChatJob] = collections.deque()
        self._active: list[ChatJob] = []
        self._state: Any = None
        self._tokens: torch.Tensor | None = None
        self._cond = threading.Condition()
        self._accepting = True
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._end_ids = end_token_ids(self.llm)
        self._ends: torch.Tensor | None = None
        # whether joining merges decode states: False when the LLM keeps the contract's
        # default (not supported), None until a first merge tells
        overrides = type(self.llm).merge_decode_states is not PivotLLM.merge_decode_states
        self._merge_ok: bool | None = None if overrides else False

    # -- public --------------------------------------------------------------------------
    def start(self) -> None:
        self.stack.eval()
        self._thread = threading.Thread(target=self._run, name="mpm-decode-loop", daemon=True)
        self._thread.start()

    def submit(self, job: ChatJob) -> None:
        with self._cond:
            if not self._accepting:
                raise ShuttingDown()
            if len(self._waiting) >= self.max_queue:
                raise QueueFull()
            self._waiting.append(job)
            self._cond.notify()

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._active)

    def retry_after(self) -> int:
        """Seconds a refused client should wait: a rough time for the batch to turn over."""
        return 1

    def stop(self, grace: float = 0.0) -> None:
        """Stop accepting; let queued and running requests finish for up to ``grace``
        seconds, then cancel what is left and end the loop."""
        with self._cond:
            self._accepting = False
        deadline = time.monotonic() + max(0.0, grace)
        while time.monotonic() < deadline and (self._waiting or self._active):
            time.sleep(0.05)
        with self._cond:
            self._stopping = True
            for job in [*self._waiting, *self._active]:
                job.cancel()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._waiting or self._active or self._stopping):
                    self._cond.wait()
                if self._stopping:
                    self._abort_all("the server is shutting down")
                    return
                joining = self._take_joining()
            try:
                with torch.no_grad():
                    self._step(joining)
            except Exception as exc:  # a bug or out-of-memory must not leave clients waiting forever
                LOG.exception("decode step failed")
                for job in [*self._active, *joining]:
                    self._emit(job, "error", f"generation failed: {type(exc).__name__}")
                self._active, self._state, self._tokens = [], None, None

    def _worth_joining(self) -> bool:
        """Whether waiting requests join now. Merging decode states costs only the
        new rows' prefill, so they join at once. Re-prefilling the running rows
        costs more: with rows running they join once they are at least half as
        many as the running ones, or after ``join_every`` steps, so clients that
        send their next request a few milliseconds apart cost a few re-prefills
        per wave, not one per client."""
        if not self._active:
            return True
        if len(self._active) >= self.max_batch:
            return False
        if self._merge_ok is not False:
            return True
        return 2 * len(self._waiting) >= len(self._active) or self._steps_since_join >= self.join_every

    def _take_joining(self) -> list[ChatJob]:
        joining: list[ChatJob] = []
        if not self._waiting or not self._worth_joining():
            return joining
        # a running batch can be re-prefilled only from plain token encodings (a merge
        # never re-prefills)
        extendable = self._merge_ok is True or all(not job.encoding.extra for job in self._active)
        while self._waiting and len(self._active) + len(joining) < self.max_batch:
            if self._active and not (extendable and (self._merge_ok is True or not self._waiting[0].encoding.extra)):
                break
            joining.append(self._waiting.popleft())
        return joining

    def _abort_all(self, message: str) -> None:
        for job in [*self._waiting, *self._active]:
            self._emit(job, "error", message)
        self._waiting.clear()
        self._active = []

    def _emit(self, job: ChatJob, kind: str, value: Any) -> None:
        try:
            job.sink(kind, value)
        except Exception:  # the client's side is gone (closed event loop): nothing to tell
            LOG.debug("dropped %s event of %s", kind, job.id)

    def _begin(self, job: ChatJob) -> bool:
        """Prepare a joining job's row; False when it is already complete."""
        device = self.stack.device
        if self._ends is None:
            self._ends = torch.tensor(self._end_ids, device=device)
        if job.image_key is not None:
            features = self.cache.get(job.image_key)
            if features is None:
                features = encode_pixels(self.stack, job.pixels[None]).detach()
                self.cache.put(job.image_key, features)
                self.metrics.inc("mpm_image_encodings_total")
            job.features, job.pixels = features, None
        config = job.config
        seen = None
        if config.repetition_penalty != 1.0:  # the same context the one-request path penalises
            one = self.llm.collate([job.encoding], padding_side="left")
            seen = initial_seen(one, self.llm.vocab_size, device, config)[0]
        job.row = RowState(config, StopStringChecker(self.llm, config.stop_strings),
                           seeded_generator(config, device), seen)
        job.text = TextStream(self.llm, config.stop_strings)
        if config.max_new_tokens == 0:
            self._finish(job, "length")
            return False
        return True

    def _step(self, joining: list[ChatJob]) -> None:
        joining = [job for job in joining if not self._cancelled(job) and self._begin(job)]
        rows = [*self._active, *joining]
        if not rows:
            self._active, self._state, self._tokens = [], None, None
            return
        if joining:
            logits = self._join(joining)
            self._steps_since_join = 0
        else:
            self._steps_since_join += 1
            logits, self._state = self.llm.decode(self._tokens, self._state)
        self._active = rows
        tokens, emitted = sample_step(logits, [job.row for job in rows], self._ends, self.llm.pad_token_id)
        self.metrics.inc("mpm_decode_steps_total")
        self.metrics.inc("mpm_decode_rows_total", len(rows))
        produced = 0
        for job, token in zip(rows, emitted):
            if token is None:
                continue
            job.steps += 1
            produced += 1
            if token not in self._end_ids:
                piece = job.text.push(token)
                if piece:
                    self._emit(job, "piece", piece)
            if not job.row.finished and job.steps >= job.config.max_new_tokens:
                job.row.finished = True
        self.metrics.inc("mpm_tokens_generated_total", produced)
        keep = []
        for i, job in enumerate(rows):
            if job.row.finished:
                self._finish(job, "stop" if job.row.ended else "length")
            elif not self._cancelled(job):
                keep.append(i)
        self._tokens = tokens
        if len(keep) < len(rows):
            self._active = [rows[i] for i in keep]
            if keep:
                index = torch.tensor(keep, device=tokens.device)
                self._state = self.llm.reorder_state(self._state, index)
                self._tokens = tokens.index_select(0, index)
            else:
                self._state, self._tokens = None, None

    def _join(self, joining: list[ChatJob]) -> torch.Tensor:
        """The next logits of the running rows followed by the joining ones; the
        decode state then holds them all, in that order."""
        if self._active and self._merge_ok is not False:
            running_logits, running_state = self.llm.decode(self._tokens, self._state)
            joining_logits, joining_state = self._prefill(joining)
            merged = self.llm.merge_decode_states([running_state, joining_state])
            if merged is not None:
                self._merge_ok, self._state = True, merged
                self.metrics.inc("mpm_state_merges_total")
                return torch.cat([running_logits, joining_logits.to(running_logits.dtype)])
            self._merge_ok = False  # the running rows have not sampled: re-prefilling them is still exact
            LOG.info("the LLM cannot merge decode states: joining requests re-prefill the running batch")
        logits, self._state = self._prefill([*self._active, *joining])
        return logits

    def _prefill(self, rows: list[ChatJob]) -> tuple[torch.Tensor, Any]:
        """Prefill rows together, each as its prompt followed by what it generated so far."""
        encodings = []
        for job in rows:
            enc, extra = job.encoding, job.row.ids
            if extra:
                enc = PromptEncoding(enc.input_ids + extra, enc.labels + [IGNORE_INDEX] * len(extra),
                                     enc.image_mask + [False] * len(extra))
            encodings.append(enc)
        device = self.stack.device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                 for k, v in self.llm.collate(encodings, padding_side="left").items()}
        images = [job.features for job in rows if job.features is not None]
        features = torch.cat(images).to(device) if images else None
        embeds = self.stack.embed(batch, features)
        logits, state = self.llm.prefill(embeds, batch)
        self.metrics.inc("mpm_prefills_total")
        return logits, state

    def _cancelled(self, job: ChatJob) -> bool:
        if not job.cancelled.is_set():
            return False
        self.metrics.inc("mpm_requests_cancelled_total")
        ids = job.row.ids if job.row is not None else []
        self._emit(job, "done", Completion("", "cancelled", len(job.encoding), len(ids)))
        return True

    def _finish(self, job: ChatJob, reason: str) -> None:
        rest = job.text.finish()
        if rest:
            self._emit(job, "piece", rest)
        answer = decode_answer(self.llm, job.row.ids, job.config.stop_strings)
        self._emit(job, "done", Completion(answer, reason, len(job.encoding), job.steps))
