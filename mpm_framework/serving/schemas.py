"""Request bodies of the OpenAI endpoints MPM serves, validated strictly.

Types are strict (``"5"`` is not a number), unknown fields are refused by name,
and fields of the official API that MPM cannot honour (``n > 1``, penalties,
tools, logprobs) get a 400 naming the field rather than being ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import DataError
from .errors import APIError, bad_request

# fields of the official chat API that MPM does not implement: named in the 400
UNSUPPORTED_CHAT_FIELDS = ("logprobs", "top_logprobs", "logit_bias", "tools", "tool_choice", "functions",
                           "function_call", "response_format", "parallel_tool_calls", "audio", "modalities",
                           "prediction", "reasoning_effort", "service_tier", "store", "metadata",
                           "web_search_options")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ImageURL(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(_Strict):
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatCompletionRequest(_Strict):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1)
    user: str | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            # a ValueError for pydantic, which reports it as a 400 naming 'stop'
            raise DataError(f"at most 4 stop sequences are allowed, got {len(value)}: send 4 or fewer")
        return value


class ImageGenerationRequest(_Strict):
    prompt: str = Field(min_length=1)
    model: str | None = None
    n: int = Field(default=1, ge=1, le=4)
    size: str | None = None
    response_format: Literal["b64_json"] = "b64_json"
    user: str | None = None
    negative_prompt: str | None = None  # not in the official API: the decoder's negative prompt
    seed: int | None = None  # not in the official API: reproducible images


def _param(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse(model: type[BaseModel], body: Any, unsupported: tuple[str, ...] = ()) -> Any:
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(body).__name__}")
    for name in unsupported:
        if name in body:
            raise bad_request(f"'{name}' is not supported by this server", param=name, code="unsupported_parameter")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param(tuple(first["loc"]))
        if first["type"] == "extra_forbidden":
            raise bad_request(f"unknown field '{param}'", param=param, code="unknown_parameter") from None
        if first["type"] == "missing":
            raise bad_request(f"missing required field '{param}'", param=param) from None
        raise bad_request(f"invalid '{param}': {first['msg']}", param=param) from None


def parse_chat_request(body: Any) -> ChatCompletionRequest:
    """A validated chat request, or an :class:`APIError` naming the bad field."""
    request = _parse(ChatCompletionRequest, body, UNSUPPORTED_CHAT_FIELDS)
    if request.n not in (None, 1):
        raise bad_request("only n=1 is supported", param="n", code="unsupported_parameter")
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(request, name) not in (None, 0, 0.0):
            raise bad_request(f"'{name}' is not supported (only 0)", param=name, code="unsupported_parameter")
    return request


def parse_image_request(body: Any) -> ImageGenerationRequest:
    return _parse(ImageGenerationRequest, body)


__all__ = ["APIError", "ChatCompletionRequest", "ImageGenerationRequest", "parse_chat_request",
           "parse_image_request"]
