"""The decoding loop: greedy, sampling and beam search over the PivotLLM contract.

Nothing here knows a model: the loop only calls ``llm.prefill`` (the prompt,
left-padded), ``llm.decode`` (one token per row) and ``llm.reorder_state`` (beam
search), so the LLaMA plugin, the CPM-Bee plugin and the test TinyLLM decode
identically. Semantics follow Hugging Face ``generate`` where a choice exists
(repetition penalty, top-k/top-p order, beam length penalty and early stopping),
so results are comparable with transformers' own models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from ..contracts.llm import PivotLLM
from ..errors import ConfigError, MPMError, did_you_mean

NEG_INF = -1.0e9  # HF's "impossible" score for beam bookkeeping


@dataclass
class GenerationConfig:
    """How to decode. Defaults are greedy decoding of at most 128 new tokens."""

    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k filtering
    top_p: float = 1.0  # 1.0: no nucleus filtering
    num_beams: int = 1
    length_penalty: float = 1.0  # beam score = sum log p / generated_len ** length_penalty
    early_stopping: bool | str = False  # HF semantics: True, False (heuristic) or "never"
    repetition_penalty: float = 1.0  # CTRL-style, > 1 discourages repeats (VisCPM uses 1.1)
    repetition_scope: str = "all"  # penalised tokens: "all" (prompt + generated, HF) | "generated" (CPM-Bee/VisCPM)
    beam_temperature: float = 1.0  # beam search scores log_softmax(logits / T) (VisCPM's beam search uses 0.7)
    stop_strings: tuple[str, ...] = ()  # generation ends once the text contains one; it is cut off
    seed: int | None = None  # sampling seed (None: torch's global generator)

    def __post_init__(self) -> None:
        if isinstance(self.stop_strings, str):
            self.stop_strings = (self.stop_strings,)
        self.stop_strings = tuple(s for s in self.stop_strings if s)
        if self.max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.num_beams < 1:
            raise ConfigError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.do_sample and self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0, got {self.top_k}")
        if self.beam_temperature <= 0:
            raise ConfigError(f"beam_temperature must be > 0, got {self.beam_temperature}")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.repetition_scope not in ("all", "generated"):
            raise ConfigError(f"repetition_scope must be 'all' or 'generated', got {self.repetition_scope!r}"
                              f"{did_you_mean(str(self.repetition_scope), ('all', 'generated'))}")
        if self.num_beams > 1 and self.do_sample:
            raise ConfigError("beam sampling is not supported: use num_beams > 1 or do_sample, not both")
        if self.early_stopping not in (True, False, "never"):
            raise ConfigError(f"early_stopping must be true, false or 'never', got {self.early_stopping!r}")

    @classmethod
    def from_kwargs(cls, base: GenerationConfig | None = None, **kwargs: Any) -> GenerationConfig:
        """A config from keyword arguments, naming the nearest field on a typo."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in kwargs:
            if key not in names:
                raise ConfigError(f"unknown generation option '{key}'.{did_you_mean(key, names)} "
                                  f"Options: {', '.join(names)}")
        values = dataclasses.asdict(base) if base is not None else {}
        values.update({k: v for k, v in kwargs.items() if v is not None})
        return cls(**values)


def model_generation_config(llm: PivotLLM, base: GenerationConfig | None = None,
                            **options: Any) -> GenerationConfig:
    """The config for decoding with ``llm``: the caller's options (None means
    "not set") over the LLM's ``generation_defaults`` over the dataclass
    defaults. A whole ``base`` config counts as every option set (no model
    defaults). Asking for sampling drops a beam-search default and asking for
    beams drops a sampling default, so e.g. ``--sample`` on a VisCPM stack
    samples instead of failing as "beam sampling"."""
    if base is not None:
        return GenerationConfig.from_kwargs(base, **options)
    given = {k: v for k, v in options.items() if v is not None}
    defaults = dict(llm.generation_defaults)
    if given.get("do_sample") and "num_beams" not in given:
        defaults.pop("num_beams", None)
    if given.get("num_beams", 1) > 1 and "do_sample" not in given:
        defaults.pop("do_sample", None)
    return GenerationConfig.from_kwargs(**{**defaults, **given})


def context_window(llm: PivotLLM) -> int | None:
    """The most tokens (prompt + answer) the LLM can attend over, when it says:
    its ``max_context_length``, else its transformers config's
    ``max_position_embeddings``; None when unknown (no check is made)."""
    value = llm.max_context_length
    if isinstance(value, int) and value > 0:
        return value
    config = getattr(getattr(llm, "hf", None), "config", None)
    if config is not None:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        value = getattr(text, "max_position_embeddings", None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class ContextLengthError(MPMError):
    """The prompt does not fit the model's context window."""

    def __init__(self, prompt_tokens: int, window: int, hint: str = "") -> None:
        self.prompt_tokens, self.context_window = prompt_tokens, window
        super().__init__(f"the prompt is {prompt_tokens} tokens but the model's context window is {window} "
                         f"tokens (the answer needs at least one more){hint}")


# -- logits processing ------------------------------------------------------------


def seen_tokens(batch: dict[str, torch.Tensor], vocab_size: int, device: torch.device) -> torch.Tensor:
    """(B, V) bool: text tokens of each prompt (padding and image slots excluded),
    the context the repetition penalty looks at."""
    ids = batch["input_ids"].to(device)
    valid = batch["attention_mask"].to(device).bool() & (ids >= 0) & (ids < vocab_size)
    if batch.get("image_mask") is not None:
        valid &= ~batch["image_mask"].to(device).bool()
    seen = torch.zeros(ids.shape[0], vocab_size, dtype=torch.bool, device=device)
    seen.scatter_(1, ids.clamp(0, vocab_size - 1), valid)
    # scatter_ with duplicates keeps an arbitrary write; make every valid id count
    rows, cols = valid.nonzero(as_tuple=True)
    seen[rows, ids[rows, cols]] = True
    return seen


def initial_seen(batch: dict[str, torch.Tensor], vocab_size: int, device: torch.device,
                 config: GenerationConfig) -> torch.Tensor | None:
    """What the repetition penalty looks at before the first new token: the
    prompt's text tokens (scope "all"), nothing (scope "generated": CPM-Bee's
    ``apply_repetition_penalty`` only looks at the output), or None (no penalty)."""
    if config.repetition_penalty == 1.0:
        return None
    if config.repetition_scope == "generated":
        return torch.zeros(batch["input_ids"].shape[0], vocab_size, dtype=torch.bool, device=device)
    return seen_tokens(batch, vocab_size, device)


def apply_repetition_penalty(scores: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL penalty as in HF: divide positive, multiply negative scores of seen tokens."""
    if penalty == 1.0:
        return scores
    penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
    return torch.where(seen, penalised, scores)


def warp_for_sampling(scores: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """Temperature, then top-k, then top-p (HF's order); removed tokens get -inf."""
    if config.temperature != 1.0:
        scores = scores / config.temperature
    if config.top_k > 0:
        k = min(config.top_k, scores.shape[-1])
        kth = torch.topk(scores, k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        probs = sorted_scores.softmax(-1)
        # drop a token when the tokens ranked above it already hold top_p of the mass;
        # the best token is always kept
        mass_before = probs.cumsum(-1) - probs
        drop_sorted = mass_before >= config.top_p  # HF drops the boundary token too
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    return scores


# -- stopping -------------------------------------------------------------------------


def end_token_ids(llm: PivotLLM) -> list[int]:
    """The eos id plus any extra ids a model declares in ``stop_token_ids``
    (chat formats that end turns with their own token)."""
    ids = [int(llm.eos_token_id)]
    ids += [int(i) for i in llm.stop_token_ids or () if int(i) not in ids]
    return ids


def cut_at_stop(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string, and whether one occurred."""
    cut = min((i for i in (text.find(s) for s in stop_strings) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def decode_answer(llm: PivotLLM, token_ids: Sequence[int], stop_strings: Sequence[str] = ()) -> str:
    """Generated ids -> the answer text: decoded, cut at the first stop string, stripped."""
    return cut_at_stop(llm.decode_text(list(token_ids)), stop_strings)[0].strip()


class StopStringChecker:
    """Whether a row's generated text contains a stop string.

    Text is decoded from the ids, so a stop string spanning several tokens, or
    covering part of one, is found."""

    def __init__(self, llm: PivotLLM, stop_strings: Sequence[str]) -> None:
        self.llm, self.stop_strings = llm, tuple(stop_strings)

    def __bool__(self) -> bool:
        return bool(self.stop_strings)

    def hit(self, token_ids: Sequence[int]) -> bool:
        if not self.stop_strings or not token_ids:
            return False
        return cut_at_stop(self.llm.decode_text(list(token_ids)), self.stop_strings)[1]


# -- the loop -------------------------------------------------------------------------

Step = list[int | None]  # per row: the token produced at this step, or None (row finished)


class Streamer:
    """Receives tokens as they are decided: ``put`` once per step with one entry
    per batch row (None for finished rows), ``end`` once."""

    def put(self, step: Step) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def end(self) -> None:
        pass


@dataclass
class _CallbackStreamer(Streamer):
    callback: Callable[[Step], None]

    def put(self, step: Step) -> None:
        self.callback(step)


def generate(
    llm: PivotLLM,
    inputs_embeds: torch.Tensor,
    batch: dict[str, torch.Tensor],
    config: GenerationConfig | None = None,
    streamer: Streamer | Callable[[Step], None] | None = None,
) -> list[list[int]]:
    """Generated token ids per row (the end token excluded).

    ``inputs_embeds`` and ``batch`` are a left-padded prompt batch as the LLM's
    ``collate(..., padding_side="left")`` builds it, image features already in
    place. A stop string ends a row; its tokens stay in the ids (``decode_answer``
    cuts the text)."""
    if streamer is not None and not isinstance(streamer, Streamer):
        streamer = _CallbackStreamer(streamer)
    steps = iter_generate(llm, inputs_embeds, batch, config or GenerationConfig())
    while True:
        try:
            step = next(steps)
        except StopIteration as done:
            if streamer is not None:
                streamer.end()
            return done.value
        if streamer is not None:
            streamer.put(step)


def iter_generate(
    llm: PivotLLM,
    inputs_embeds: torch.Tensor,
    batch: dict[str, torch.Tensor],
    config: GenerationConfig,
) -> Generator[Step, None, list[list[int]]]:
    """Like :func:`generate`, as a generator of per-step tokens whose return value
    is the final ids. Beam search decides its tokens only at the end, so it yields
    the winning sequences step by step after the search."""
    if config.max_new_tokens == 0:
        return [[] for _ in range(inputs_embeds.shape[0])]
    # no_grad wraps the model calls, never a yield: a suspended generator must not
    # leave autograd switched off in its caller
    if config.num_beams > 1:
        with torch.no_grad():
            result = _beam_search(llm, inputs_embeds, batch, config)
        for t in range(max((len(r) for r in result), default=0)):
            yield [r[t] if t < len(r) else None for r in result]
        return result
    return (yield from _sample(llm, inputs_embeds, batch, config))


@dataclass
class RowState:
    """One sequence being decoded by sampling or greedy search: its options and
    what it generated so far. :func:`sample_step` decides its next token; the
    one-call loop (:func:`generate`) and the server's continuous batching
    (``mpm_framework.serving``) both decode through it, so a row is decided the
    same way whatever batch it sits in."""

    config: GenerationConfig
    stops: StopStringChecker
    generator: torch.Generator | None = None  # seeded sampling; None: torch's global generator
    seen: torch.Tensor | None = None  # (V,) bool: tokens the repetition penalty looks at
    ids: list[int] = field(default_factory=list)  # generated, the end token excluded
    finished: bool = False
    ended: bool = False  # finished by an end token or a stop string (not by a length limit)


def seeded_generator(config: GenerationConfig, device: torch.device) -> torch.Generator | None:
    """The sampling generator a config asks for (None: greedy or unseeded)."""
    if not (config.do_sample and config.seed is not None):
        return None
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    return generator


def sample_step(logits: torch.Tensor, rows: Sequence[RowState], ends: torch.Tensor,
                pad_token_id: int) -> tuple[torch.Tensor, Step]:
    """Decide one token per row from the next-token ``logits`` (B, V).

    Returns the tokens to feed back (finished rows get ``pad_token_id``) and
    what each row emitted (None for a row finished before this step). Rows are
    updated in place: ids, finished, seen. Sampling rows sharing one config
    and one generator are drawn in one call, as Hugging Face does for a batch."""
    scores = logits.float()
    for i, row in enumerate(rows):
        if row.seen is not None:
            scores[i] = apply_repetition_penalty(scores[i], row.seen, row.config.repetition_penalty)
    tokens = scores.argmax(-1)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, row in enumerate(rows):
        if row.config.do_sample:
            groups.setdefault((id(row.config), id(row.generator)), []).append(i)
    for index in groups.values():
        first = rows[index[0]]
        chosen = torch.tensor(index, device=scores.device)
        probs = warp_for_sampling(scores.index_select(0, chosen), first.config).softmax(-1)
        tokens[chosen] = torch.multinomial(probs, 1, generator=first.generator).squeeze(1)
    done_before = torch.tensor([row.finished for row in rows], device=tokens.device)
    tokens = torch.where(done_before, torch.full_like(tokens, pad_token_id), tokens)
    is_end = torch.isin(tokens, ends)
    # one transfer per step (on a GPU every per-row tensor read would synchronise)
    emitted: Step = []
    for row, token, ending in zip(rows, tokens.tolist(), is_end.tolist()):
        if row.finished:
            emitted.append(None)
            continue
        emitted.append(token)
        if ending:
            row.finished = row.ended = True
        else:
            row.ids.append(token)
            if row.stops.hit(row.ids):
                row.finished = row.ended = True
        if row.seen is not None:
            row.seen[token] = True
    return tokens, emitted


def _sample(
    llm: PivotLLM, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor], config: GenerationConfig
) -> Generator[Step, None, list[list[int]]]:
    """Greedy decoding or sampling, one token per row per step."""
    with torch.no_grad():
        logits, state = llm.prefill(inputs_embeds, batch)
    seen = initial_seen(batch, logits.shape[1], logits.device, config)
    return (yield from sample_from(llm, logits, state, seen, config))


def sample_from(
    llm: PivotLLM, logits: torch.Tensor, state: Any, seen: torch.Tensor | None, config: GenerationConfig,
    final_state: list[Any] | None = None,
) -> Generator[Step, None, list[list[int]]]:
    """Greedy decoding or sampling from next-token ``logits`` (B, V) and the
    decode ``state`` they came with (after ``prefill`` or ``extend_state``).
    ``seen``: what the repetition penalty starts from (:func:`initial_seen`).
    ``final_state`` receives the last state: it covers every generated token
    but the last one emitted, which has not been fed through the model (a
    chat that keeps its cache feeds it with the next turn)."""
    if config.max_new_tokens == 0:
        if final_state is not None:
            final_state.append(state)
        return [[] for _ in range(logits.shape[0])]
    num_rows = logits.shape[0]
    device = logits.device
    ends = torch.tensor(end_token_ids(llm), device=device)
    stops = StopStringChecker(llm, config.stop_strings)
    generator = seeded_generator(config, device)
    rows = [RowState(config, stops, generator, seen[i] if seen is not None else None) for i in range(num_rows)]
    for step in range(config.max_new_tokens):
        tokens, emitted = sample_step(logits, rows, ends, llm.pad_token_id)
        yield emitted
        if all(row.finished for row in rows) or step == config.max_new_tokens - 1:
            break
        with torch.no_grad():
            logits, state = llm.decode(tokens, state)
    if final_state is not None:
        final_state.append(state)
    return [row.ids for row in rows]


def _beam_search(
    llm: PivotLLM, inputs_embeds: torch.Tensor, batch: dict[str, torch.Tensor], config: GenerationConfig
) -> list[list[int]]:
    """Beam search with HF's bookkeeping: keep the top (1 + #end ids) x K
    continuations, finish the ones among the top K that end, score finished
    hypotheses by sum log p / generated_len ** length_penalty (the end token
    counted), and stop by HF's early-stopping rule."""
    K = config.num_beams
    logits, state = llm.prefill(inputs_embeds, batch)
    B, V = logits.shape
    device = logits.device
    expand = torch.arange(B, device=device).repeat_interleave(K)
    state = llm.reorder_state(state, expand)
    logits = logits.index_select(0, expand)
    seen = initial_seen(batch, V, device, config)
    seen = seen.index_select(0, expand) if seen is not None else None
    end_ids = end_token_ids(llm)
    ends = torch.tensor(end_ids, device=device)
    stops = StopStringChecker(llm, config.stop_strings)
    keep = max(2, 1 + len(end_ids)) * K
    top_mask = torch.arange(keep, device=device) < K
    max_new = config.max_new_tokens

    running = torch.zeros(B, K, 0, dtype=torch.long, device=device)
    running_scores = torch.zeros(B, K, device=device)
    running_scores[:, 1:] = NEG_INF
    done_seqs = torch.full((B, K, max_new), llm.pad_token_id, dtype=torch.long, device=device)
    done_lens = torch.zeros(B, K, dtype=torch.long, device=device)
    done_scores = torch.full((B, K), NEG_INF, device=device)
    done_flags = torch.zeros(B, K, dtype=torch.bool, device=device)
    improvable = torch.ones(B, 1, dtype=torch.bool, device=device)
    batch_offset = torch.arange(B, device=device)[:, None] * K

    for step in range(max_new):
        log_probs = _beam_log_probs(logits, seen, config)
        total = (log_probs.view(B, K, V) + running_scores[..., None]).view(B, K * V)
        top_scores, top_index = torch.topk(total, keep, dim=-1)
        source = top_index // V
        tokens = top_index % V
        candidates = torch.cat([_gather_beams(running, source), tokens[..., None]], dim=-1)

        hits = torch.isin(tokens, ends)
        if stops:
            for b in range(B):
                for c in range(keep):
                    if not hits[b, c] and stops.hit(candidates[b, c].tolist()):
                        hits[b, c] = True
        if step == max_new - 1:
            hits[:] = True

        # the best K continuations that go on
        open_scores = top_scores + hits.float() * NEG_INF
        chosen = torch.topk(open_scores, K, dim=-1).indices
        running = _gather_beams(candidates, chosen)
        running_scores = _gather_beams(open_scores, chosen)
        parents = _gather_beams(source, chosen)

        # the continuations that end, if they beat what is already finished
        just_done = hits & top_mask[None, :]
        final = top_scores / float(step + 1) ** config.length_penalty
        full = done_flags.all(-1, keepdim=True) & (config.early_stopping is True)
        final = final + full.float() * NEG_INF + (~improvable).float() * NEG_INF + (~just_done).float() * NEG_INF
        padded = F.pad(candidates, (0, max_new - step - 1), value=llm.pad_token_id)
        merged_scores = torch.cat([done_scores, final], dim=1)
        best = torch.topk(merged_scores, K, dim=-1).indices
        done_seqs = _gather_beams(torch.cat([done_seqs, padded], dim=1), best)
        done_lens = _gather_beams(torch.cat([done_lens, torch.full_like(final, step + 1, dtype=torch.long)], 1), best)
        done_scores = _gather_beams(merged_scores, best)
        done_flags = _gather_beams(torch.cat([done_flags, just_done], dim=1), best)

        improvable = improvable & _improvement_possible(running_scores, done_scores, done_flags, step + 1,
                                                        max_new, config)
        stop_all = (not bool(improvable.any())) or bool(hits.all())
        stop_all = stop_all or (config.early_stopping is True and bool(done_flags.all()))
        if stop_all:
            break
        flat_parents = (parents + batch_offset).view(-1)
        state = llm.reorder_state(state, flat_parents)
        next_tokens = running[:, :, -1].reshape(-1)
        if seen is not None:
            seen = seen.index_select(0, flat_parents)
            seen[torch.arange(B * K, device=device), next_tokens] = True
        logits, state = llm.decode(next_tokens, state)

    out = []
    for b in range(B):
        ids = done_seqs[b, 0, : int(done_lens[b, 0])].tolist()
        if ids and ids[-1] in end_ids:
            ids = ids[:-1]
        out.append(ids)
    return out


def _beam_log_probs(logits: torch.Tensor, seen: torch.Tensor | None, config: GenerationConfig) -> torch.Tensor:
    """A beam step's token scores. Scope "all" follows HF: log-softmax, then the
    penalty on the log-probabilities. Scope "generated" follows CPM-Bee/VisCPM's
    beam search (``vllm_bee.py``): the penalty on the raw logits, then the
    temperature, then log-softmax."""
    scores = logits.float()
    generated_scope = config.repetition_scope == "generated"
    if seen is not None and generated_scope:
        scores = apply_repetition_penalty(scores, seen, config.repetition_penalty)
    if config.beam_temperature != 1.0:
        scores = scores / config.beam_temperature
    log_probs = F.log_softmax(scores, dim=-1)
    if seen is not None and not generated_scope:
        log_probs = apply_repetition_penalty(log_probs, seen, config.repetition_penalty)
    return log_probs


def _gather_beams(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tensor (B, N, ...) rows picked by index (B, M) -> (B, M, ...)."""
    while index.dim() < tensor.dim():
        index = index.unsqueeze(-1)
    return torch.gather(tensor, 1, index.expand(*index.shape[:2], *tensor.shape[2:]))


def _improvement_possible(
    running_scores: torch.Tensor,
    done_scores: torch.Tensor,
    done_flags: torch.Tensor,
    generated_len: int,
    max_new: int,
    config: GenerationConfig,
) -> torch.Tensor:
    """HF's early-stop heuristic: can the best open beam still beat the worst kept
    finished hypothesis? (Always yes while fewer than K hypotheses are finished.)"""
    length = max_new if (config.early_stopping == "never" and config.length_penalty > 0) else generated_len
    best_open = running_scores[:, :1] / float(length) ** config.length_penalty
    worst_done = torch.where(done_flags, done_scores.min(dim=1, keepdim=True).values,
                             torch.full_like(done_scores, NEG_INF))
    return (best_open > worst_done).any(dim=-1, keepdim=True)
