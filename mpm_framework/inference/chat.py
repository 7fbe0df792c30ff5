"""Chat with a ChatStack: multi-turn with a cached image encoding, streaming, batches.

``ChatStack.chat / stream_chat / generate`` delegate here. A conversation is a
:class:`History` the caller passes back each turn; it holds the turns and the
encoded image, so asking a second question about the same picture never runs
the vision encoder again (VisCPM passed ``vision_hidden_states`` back for the
same reason). It also holds the LLM's decode state after the conversation
(the KV cache), so a new turn feeds only its own tokens through the LLM
(:meth:`PivotLLM.extend_state`) instead of the whole conversation again.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
from PIL import Image

from ..contracts.prompt import IMAGE_MARKER, PromptEncoding, Turn
from ..errors import MPMError
from ..imaging import load_image
from .generation import (
    ContextLengthError,
    GenerationConfig,
    Step,
    context_window,
    decode_answer,
    end_token_ids,
    initial_seen,
    iter_generate,
    model_generation_config,
    sample_from,
)
from .streaming import TextStream

ImageInput = Image.Image | str | Path | torch.Tensor | None


class DecodeCache(NamedTuple):
    """The LLM's decode state after a conversation (one row): what a new turn extends."""

    state: Any  # from the LLM's prefill/decode/extend_state
    token_ids: tuple[int, ...]  # the conversation so far: the prompt, then the answer's tokens as generated
    image_mask: tuple[bool, ...]  # image slots among token_ids
    fed: int  # tokens of token_ids the state has seen; the last generated one is fed with the next turn
    image_features: torch.Tensor | None  # what filled the image slots


@dataclass
class History:
    """A conversation: its turns, the encoded image they talk about and the
    LLM's decode state after them.

    ``image_features`` (1, M, D) is what the connector produced for the image;
    ``pixel_values`` identifies that image, so passing the same picture again
    reuses the features. ``decode_cache`` lets the next turn feed only its own
    tokens; it is used only while the next prompt's tokens start with exactly
    the tokens it has seen, so editing ``turns`` (or a chat format that rewrites
    earlier turns) makes the next turn encode the whole conversation again.
    Treat it as opaque and pass it back to the next turn."""

    turns: list[Turn] = field(default_factory=list)
    image_features: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    decode_cache: DecodeCache | None = field(default=None, repr=False, compare=False)

    @property
    def has_image(self) -> bool:
        return self.image_features is not None

    def reset(self) -> History:
        """A fresh conversation about no image."""
        return History()


@dataclass
class _Prepared:
    turns: list[Turn]
    history: History  # the history the answer will be appended to


def image_pixels(stack, image: ImageInput) -> torch.Tensor:
    """An image (PIL, path or a (3, H, W) tensor) as the vision tower's normalised pixels."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3:
            raise MPMError(f"an image tensor must be (3, H, W) normalised pixels, got shape {tuple(image.shape)}")
        return image
    return stack.image_transform(train=False)(load_image(image))


def _vision_dtype(stack) -> torch.dtype:
    param = next(stack.vision.parameters(), None)
    return param.dtype if param is not None and param.is_floating_point() else torch.float32


def encode_pixels(stack, pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, M, D) image features."""
    device = stack.placed_on or next(stack.vision.parameters(), torch.empty(0)).device
    return stack.encode_images(pixels.to(device=device, dtype=_vision_dtype(stack)))


def user_turn(question: str, with_image: bool) -> Turn:
    """The user's turn; the image marker goes first, as the built-in stages train it."""
    if IMAGE_MARKER in question:
        raise MPMError(f"the question must not contain the image marker {IMAGE_MARKER!r}; pass the image instead")
    return Turn("user", f"{IMAGE_MARKER}\n{question}" if with_image else question)


def _prepare(stack, image: ImageInput, question: str, history: History | None) -> _Prepared:
    """Next turn's prompt turns; encodes the image only when it is new.

    The same image (pixel-identical) reuses the cached features. A different
    image starts a new conversation about it: the built-in stages train one
    image per conversation."""
    history = history if history is not None else History()
    if not isinstance(history, History):
        raise MPMError(f"history must be the History returned by the previous turn, got {type(history).__name__}")
    if image is None:
        return _Prepared([*history.turns, user_turn(question, False)], history)
    pixels = image_pixels(stack, image)
    if history.pixel_values is not None and torch.equal(history.pixel_values, pixels):
        return _Prepared([*history.turns, user_turn(question, False)], history)
    features = encode_pixels(stack, pixels[None])
    if history.has_image:
        history = History()  # a new picture: a new conversation
    history = replace(history, image_features=features, pixel_values=pixels)
    return _Prepared([*history.turns, user_turn(question, True)], history)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def drop_oldest_exchange(turns: list[Turn]) -> list[Turn] | None:
    """``turns`` without the oldest user turn and the answers to it (None when
    only the newest question is left). An image marker in the dropped turn
    moves to the next user turn: the conversation keeps talking about its image."""
    first = next((i for i, t in enumerate(turns) if t.role == "user"), None)
    if first is None:
        return None
    following = next((i for i in range(first + 1, len(turns)) if turns[i].role == "user"), None)
    if following is None:
        return None
    kept = [*turns[:first], *turns[following:]]
    if IMAGE_MARKER in turns[first].content and IMAGE_MARKER not in turns[following].content:
        index = first  # where the next user turn now sits
        kept[index] = Turn("user", f"{IMAGE_MARKER}\n{kept[index].content}")
    return kept


def fit_context(stack, turns: list[Turn], config: GenerationConfig,
                truncate: bool = False) -> tuple[list[Turn], PromptEncoding, GenerationConfig]:
    """The prompt encoding of ``turns`` checked against the LLM's context window.

    Too long: :class:`ContextLengthError` with both numbers, or with ``truncate``
    the oldest exchanges are dropped (with a warning) until it fits. The answer
    is capped so prompt + answer stay inside the window."""
    window = context_window(stack.llm)
    encoding = stack.encode_conversation(turns, add_generation_prompt=True)
    if window is None:
        return turns, encoding, config
    original = len(encoding)
    while len(encoding) >= window and truncate:
        shorter = drop_oldest_exchange(turns)
        if shorter is None:
            break
        turns = shorter
        encoding = stack.encode_conversation(turns, add_generation_prompt=True)
    if len(encoding) >= window:
        hint = "" if truncate else "; start a new conversation or allow truncating the oldest turns"
        raise ContextLengthError(len(encoding), window, hint)
    if len(encoding) != original:
        warnings.warn(f"the conversation ({original} tokens) did not fit the context window ({window} tokens): "
                      f"dropped its oldest turns, {len(encoding)} tokens left", stacklevel=3)
    room = window - len(encoding)
    if config.max_new_tokens > room:
        config = replace(config, max_new_tokens=room)
    return turns, encoding, config


def _prompt_batch(stack, encodings: list[PromptEncoding], features: torch.Tensor | None):
    """Left-padded prompt batch and its embeddings with image features in place."""
    batch = _to_device(stack.llm.collate(encodings, padding_side="left"), stack.device)
    if features is not None:
        features = features.to(stack.device)
    return batch, stack.embed(batch, features)


@contextlib.contextmanager
def _inference(stack):
    """Eval mode and no autograd for the duration; the caller's mode is restored."""
    was_training = stack.training
    stack.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        stack.train(was_training)


def _config(stack, generation: dict[str, Any]) -> GenerationConfig:
    """The caller's options over the LLM's ``generation_defaults`` (an option
    passed as None counts as not set; a whole ``generation_config`` sets all)."""
    base = generation.pop("generation_config", None)
    return model_generation_config(stack.llm, base, **generation)


def chat(stack, image: ImageInput, question: str, history: History | None = None,
         truncate_history: bool = False, **generation: Any) -> tuple[str, History]:
    """One turn: the answer and the updated history (the one passed in is not changed).

    ``image`` may be None on later turns (the conversation's image stays) or for
    a text-only question. ``generation`` takes :class:`GenerationConfig` fields
    (those not given come from the LLM's ``generation_defaults``, then the
    dataclass defaults) or ``generation_config=GenerationConfig(...)``. A conversation longer than
    the context window raises :class:`ContextLengthError`, or with
    ``truncate_history`` loses its oldest turns (with a warning)."""
    config = _config(stack, generation)
    with _inference(stack):
        prepared = _prepare(stack, image, question, history)
        prepared.turns, encoding, config = fit_context(stack, prepared.turns, config, truncate_history)
        kept: list[DecodeCache] = []
        ids = _drain(_turn_steps(stack, prepared, encoding, config, kept))[0]
    answer = decode_answer(stack.llm, ids, config.stop_strings)
    return answer, _append(prepared, answer, kept)


def reusable_prefix(cache: DecodeCache | None, encoding: PromptEncoding,
                    features: torch.Tensor | None) -> list[int] | None:
    """The tokens of ``encoding`` the cached state has not seen, or None when
    the cache cannot be extended to it: the prompt does not start with exactly
    the cached tokens (the history was edited or truncated, the answer
    re-tokenises differently, the chat format rewrites earlier turns), the
    image features differ, or the new tokens hold image slots."""
    if cache is None or cache.image_features is not features:
        return None
    n = len(cache.token_ids)
    if len(encoding) <= cache.fed or len(encoding) < n:
        return None
    if tuple(encoding.input_ids[:n]) != cache.token_ids or tuple(map(bool, encoding.image_mask[:n])) != cache.image_mask:
        return None
    if any(encoding.image_mask[cache.fed:]):
        return None
    return list(encoding.input_ids[cache.fed:])


def _turn_steps(stack, prepared: _Prepared, encoding: PromptEncoding, config: GenerationConfig,
                kept: list[DecodeCache]) -> Generator[Step, None, list[list[int]]]:
    """The turn's decoding steps (one row); returns the generated ids. Greedy
    and sampling start from the history's decode state when it extends to this
    prompt (only the new tokens are fed), else from a prefill of the whole
    prompt, and leave the state after the answer in ``kept``. Beam search
    prefills and keeps nothing (its winner's state is not tracked)."""
    llm, features = stack.llm, prepared.history.image_features
    if config.num_beams > 1:
        batch, embeds = _prompt_batch(stack, [encoding], features)
        return (yield from iter_generate(llm, embeds, batch, config))
    batch = _to_device(llm.collate([encoding], padding_side="left"), stack.device)
    started = None
    new_tokens = reusable_prefix(prepared.history.decode_cache, encoding, features)
    with torch.no_grad():
        if new_tokens is not None:
            ids = torch.tensor([new_tokens], dtype=torch.long, device=stack.device)
            started = llm.extend_state(ids, prepared.history.decode_cache.state)
        if started is None:
            embeds = stack.embed(batch, features.to(stack.device) if features is not None else None)
            started = llm.prefill(embeds, batch)
    logits, state = started
    seen = initial_seen(batch, logits.shape[1], logits.device, config)
    final: list[Any] = []
    emitted: list[int] = []
    steps = sample_from(llm, logits, state, seen, config, final)
    while True:
        try:
            step = next(steps)
        except StopIteration as done:
            result = done.value
            break
        if step[0] is not None:
            emitted.append(step[0])
        yield step
    # the end token, when one ended the answer, is part of the conversation too
    kept.append(DecodeCache(final[0], (*encoding.input_ids, *emitted),
                            (*map(bool, encoding.image_mask), *([False] * len(emitted))),
                            len(encoding) + max(len(emitted) - 1, 0), features))
    return result


def _drain(steps) -> list[list[int]]:
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _append(prepared: _Prepared, answer: str, kept: list[DecodeCache]) -> History:
    return replace(prepared.history, turns=[*prepared.turns, Turn("assistant", answer)],
                   decode_cache=kept[0] if kept else None)


class ChatStream:
    """Iterate for text pieces; afterwards ``answer`` and ``history`` hold the
    whole answer and the updated conversation. The pieces concatenate to what
    :func:`chat` returns for the same call."""

    def __init__(self, stack, image: ImageInput, question: str, history: History | None,
                 config: GenerationConfig, truncate_history: bool = False) -> None:
        self._stack, self._image, self._question, self._history = stack, image, question, history
        self.config = config
        self._truncate = truncate_history
        self.answer: str | None = None
        self.history: History | None = None
        self._started = False

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise MPMError("a chat stream can be iterated only once")
        self._started = True
        stack, config = self._stack, self.config
        # eval mode and no_grad hold while the model runs, not while the caller
        # holds a piece (the stream may be consumed slowly or abandoned)
        with _inference(stack):
            prepared = _prepare(stack, self._image, self._question, self._history)
            prepared.turns, encoding, config = fit_context(stack, prepared.turns, config, self._truncate)
        text = TextStream(stack.llm, config.stop_strings)
        kept: list[DecodeCache] = []
        steps = _turn_steps(stack, prepared, encoding, config, kept)
        end_ids = set(end_token_ids(stack.llm))
        while True:
            try:
                with _inference(stack):
                    step = next(steps)
            except StopIteration as done:
                ids: list[int] = done.value[0]
                break
            token = step[0]
            # an end token is not part of the answer; iter_generate leaves it out of ids
            if token is None or token in end_ids:
                continue
            piece = text.push(token)
            if piece:
                yield piece
        rest = text.finish()
        if rest:
            yield rest
        self.answer = decode_answer(stack.llm, ids, config.stop_strings)
        self.history = _append(prepared, self.answer, kept)


def stream_chat(stack, image: ImageInput, question: str, history: History | None = None,
                truncate_history: bool = False, **generation: Any) -> ChatStream:
    """Like :func:`chat`, yielding the answer in pieces as it is generated."""
    return ChatStream(stack, image, question, history, _config(stack, generation), truncate_history)


def generate_batch(
    stack,
    images: Sequence[ImageInput] | None,
    questions: Sequence[str],
    batch_size: int = 8,
    progress: bool = False,
    **generation: Any,
) -> list[str]:
    """Single-turn answers for many (image, question) pairs, ``batch_size`` at a
    time with left padding. ``images`` entries may be None (text-only);
    ``images=None`` makes every question text-only."""
    config = _config(stack, generation)
    questions = list(questions)
    images = [None] * len(questions) if images is None else list(images)
    if len(images) != len(questions):
        raise MPMError(f"got {len(images)} images but {len(questions)} questions; pass one image "
                       "(or None) per question")
    if batch_size < 1:
        raise MPMError(f"batch_size must be >= 1, got {batch_size}")
    answers: list[str] = []
    starts = range(0, len(questions), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="generating", unit="batch", total=len(starts))
    with _inference(stack):
        for start in starts:
            chunk_images = images[start: start + batch_size]
            chunk_questions = questions[start: start + batch_size]
            pixels = [image_pixels(stack, img) for img in chunk_images if img is not None]
            features = encode_pixels(stack, torch.stack(pixels)) if pixels else None
            conversations = [[user_turn(q, img is not None)] for img, q in zip(chunk_images, chunk_questions)]
            fitted = [fit_context(stack, turns, config) for turns in conversations]
            batch, embeds = _prompt_batch(stack, [f[1] for f in fitted], features)
            chunk_config = min((f[2] for f in fitted), key=lambda c: c.max_new_tokens)
            ids = _drain(iter_generate(stack.llm, embeds, batch, chunk_config))
            answers += [decode_answer(stack.llm, row, config.stop_strings) for row in ids]
    return answers
