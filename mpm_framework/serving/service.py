"""What the server serves: the loaded stacks, its limits, and what a request
turns into (a prompt encoding and a generation config for the decode loop; a
paint call for image generation)."""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import MPMError
from ..inference.chat import fit_context, image_pixels
from ..inference.generation import ContextLengthError, GenerationConfig
from .errors import APIError, bad_request
from .images import EncodingCache, ImageLimits, open_image
from .messages import to_conversation
from .metrics import Metrics
from .schemas import ChatCompletionRequest, ImageGenerationRequest

#: GenerationConfig fields of an LLM's ``generation_defaults`` the server applies
#: (the decode loop samples or decodes greedily; beam options do not apply).
SERVED_DEFAULTS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "repetition_penalty",
                   "repetition_scope")
FALLBACK_MAX_TOKENS = 256  # answer length when neither the request, --max-tokens nor the model says


@dataclass
class ServeOptions:
    """The server's knobs (``mpm serve --help`` lists them)."""

    model_id: str = "mpm"
    max_batch: int = 16
    max_queue: int = 64
    default_max_tokens: int | None = None  # None: the LLM's generation_defaults, else FALLBACK_MAX_TOKENS
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    cache_bytes: int = 256 * 1024 * 1024
    api_key: str | None = None
    grace: float = 30.0
    prompt_filters: list[Any] = field(default_factory=list)
    image_filters: list[Any] = field(default_factory=list)


@dataclass
class PreparedChat:
    encoding: Any
    config: GenerationConfig
    image_key: str | None
    pixels: Any


class Service:
    """The chat stack (with its decode loop) and/or the paint stack."""

    def __init__(self, chat_stack: Any | None, paint_stack: Any | None, options: ServeOptions) -> None:
        if chat_stack is None and paint_stack is None:
            raise MPMError("nothing to serve: give a chat run (vision encoder) and/or a paint run (decoder)")
        self.chat_stack, self.paint_stack, self.options = chat_stack, paint_stack, options
        self.metrics = Metrics()
        self.cache = EncodingCache(options.cache_bytes)
        self.scheduler = None
        self._paint_lock = threading.Lock()
        if chat_stack is not None:
            from .scheduler import Scheduler

            self.scheduler = Scheduler(chat_stack, self.cache, self.metrics, options.max_batch, options.max_queue)

    @property
    def languages(self) -> dict[str, Any]:
        stack = self.chat_stack if self.chat_stack is not None else self.paint_stack
        return dict(getattr(stack, "languages", {}) or {})

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.options.model_id:
            from ..errors import did_you_mean

            raise APIError(404, f"the model '{name}' does not exist.{did_you_mean(name, [self.options.model_id])} "
                           f"This server serves '{self.options.model_id}'", param="model", code="model_not_found")

    # -- chat ------------------------------------------------------------------------------
    def generation_config(self, request: ChatCompletionRequest) -> GenerationConfig:
        """A request's decoding: what it sets wins; what it omits comes from
        ``--max-tokens``, then the LLM's ``generation_defaults`` (those the
        continuous-batching loop can honour, :data:`SERVED_DEFAULTS`), then
        OpenAI's defaults (temperature 1). A model whose reference decoding is
        beam search (VisCPM) and that names no sampling default decodes a
        request without ``temperature`` greedily: the loop has no beams, and
        greedy is the deterministic decoding closest to them."""
        model = dict(self.chat_stack.llm.generation_defaults)
        values = {k: v for k, v in model.items() if k in SERVED_DEFAULTS}
        if self.options.default_max_tokens is not None:
            values["max_new_tokens"] = self.options.default_max_tokens
        values.setdefault("max_new_tokens", FALLBACK_MAX_TOKENS)
        if request.temperature is not None:
            values["do_sample"] = request.temperature > 0
            values["temperature"] = request.temperature if request.temperature > 0 else 1.0
        elif "do_sample" not in values:
            values["do_sample"] = int(model.get("num_beams", 1)) <= 1
        if request.top_p is not None:
            values["top_p"] = request.top_p
        values["stop_strings"] = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
        values["seed"] = request.seed
        return GenerationConfig.from_kwargs(**values)

    def prepare_chat(self, request: ChatCompletionRequest) -> PreparedChat:
        """Validate and encode a chat request (runs in a worker thread, not the loop)."""
        if self.chat_stack is None:
            raise APIError(404, "this server has no chat model (it was started with a paint run only)",
                           code="model_not_found")
        self.check_model(request.model)
        conversation = to_conversation(request.messages, self.options.image_limits)
        pixels = None
        if conversation.image_key is not None and self.cache.get(conversation.image_key) is None:
            image = open_image(conversation.image, self.options.image_limits, param="messages")
            pixels = image_pixels(self.chat_stack, image)
        else:
            self.metrics.inc("mpm_image_cache_hits_total") if conversation.image_key else None
        config = self.generation_config(request)
        asked = request.max_completion_tokens or request.max_tokens
        try:
            _, encoding, fitted = fit_context(self.chat_stack, conversation.turns,
                                              replace(config, max_new_tokens=asked or config.max_new_tokens))
        except ContextLengthError as exc:
            raise bad_request(str(exc), param="messages", code="context_length_exceeded") from None
        except MPMError as exc:
            raise bad_request(str(exc), param="messages") from None
        if asked is not None and fitted.max_new_tokens < asked:
            window = len(encoding) + fitted.max_new_tokens
            name = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
            raise bad_request(f"{name}={asked} plus the prompt's {len(encoding)} tokens is more than the model's "
                              f"context window of {window} tokens", param=name, code="context_length_exceeded")
        return PreparedChat(encoding, fitted, conversation.image_key, pixels)

    # -- paint -----------------------------------------------------------------------------
    @property
    def image_sizes(self) -> list[str]:
        if self.paint_stack is None:
            return []
        size = int(self.paint_stack.image_size)
        return [f"{size}x{size}"]

    def paint(self, request: ImageGenerationRequest) -> list[str]:
        """Base64 PNGs for an image request (runs in a worker thread)."""
        if self.paint_stack is None:
            raise APIError(404, "this server has no image decoder: serve a paint run (--checkpoint) or compose "
                           "one with --decoder", code="model_not_found")
        if request.size is not None and request.size not in self.image_sizes:
            raise bad_request(f"size '{request.size}' is not available; this decoder paints "
                              f"{', '.join(self.image_sizes)}", param="size")
        with self._paint_lock:  # one painting at a time: it uses every core
            results = self.paint_stack.paint(
                [request.prompt], negative_prompt=request.negative_prompt or "", seed=request.seed or 0,
                images_per_prompt=request.n, prompt_filters=self.options.prompt_filters,
                image_filters=self.options.image_filters)
        result = results[0]
        if result.rejected:
            raise bad_request(f"the prompt was refused by the safety filter: {result.rejected}", param="prompt",
                              code="content_policy_violation")
        if not result.images:
            reasons = "; ".join(result.withheld) or "no image"
            raise bad_request(f"every image was withheld by the safety filter: {reasons}",
                              code="content_policy_violation")
        out = []
        for image in result.images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        self.metrics.inc("mpm_images_generated_total", len(out))
        return out


def load_stacks(checkpoints: list[str | Path], spec: Any = None, device: str | None = None) -> tuple[Any, Any]:
    """(chat stack, paint stack) from run folders (each is one or the other) or
    from a composed spec (``--vision`` makes a chat stack, ``--decoder`` a paint stack)."""
    from ..inference.loading import _place, load_run_stack, spec_overrides
    from ..inference.run_overrides import split_for_runs
    from ..stacks.chat import ChatStack
    from ..stacks.paint import PaintStack

    chat = paint = None
    # a trained run takes only its inference settings (model.<component>.dtype / quantize) from the overrides
    per_run = split_for_runs(checkpoints, spec_overrides(spec)) if checkpoints else []
    stacks = [load_run_stack(path, overrides=run_overrides) for path, run_overrides in zip(checkpoints, per_run)]
    if spec is not None and not checkpoints:
        from dataclasses import replace as dc_replace

        from ..composition import build_stack

        def only(drop: tuple[str, ...]) -> list[str]:  # overrides of the other stack's components
            return [o for o in spec.overrides if not o.startswith(drop)]

        if spec.vision:
            chat_spec = dc_replace(spec, decoder=None, overrides=only(("model.decoder.",)))
            stacks.append(build_stack(chat_spec.resolve()))
        if spec.decoder:
            paint_spec = dc_replace(spec, vision=None, connector=None,
                                    overrides=only(("model.vision.", "model.connector.")))
            stacks.append(build_stack(paint_spec.resolve()))
        if not stacks:
            raise MPMError("serve needs a vision encoder (--vision, for chat) and/or an image decoder "
                           "(--decoder, for images), or --checkpoint RUN_DIR")
    for stack in stacks:
        if isinstance(stack, ChatStack):
            if chat is not None:
                raise MPMError("two chat runs given: serve one chat model per server")
            chat = _place(stack, device)
        elif isinstance(stack, PaintStack):
            if paint is not None:
                raise MPMError("two paint runs given: serve one image decoder per server")
            paint = _place(stack, device)
    return chat, paint
