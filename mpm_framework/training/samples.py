"""Training samples: the documented record formats, checked and normalised.

A raw record (a JSON line, a CSV row, an in-memory dict) becomes a
:class:`Sample` or raises :class:`BadSample` with a reason code; the trainer
counts the codes and names examples (see ``quality.py``). Formats are described
for users in ``docs/data-formats.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..contracts.prompt import IMAGE_MARKER, Turn

KINDS = ("pairs", "instruct", "text")
TEXT_FIELDS = ("text", "caption", "txt", "sentence", "prompt")
IMAGE_FIELDS = ("image", "jpg", "jpeg", "png", "webp", "image_path", "file_name", "img")
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
         "system": "system"}

# Reason codes of skipped records, in report order.
REASONS = (
    "malformed",  # not a JSON object / unreadable row
    "bad_encoding",  # the line / row is not valid UTF-8
    "empty_text",  # caption or answer empty
    "missing_image",  # no image field, or the file does not exist
    "corrupt_image",  # the file exists but does not decode
    "bad_conversation",  # LLaVA conversation that cannot be used
    "unknown_language",  # a pair whose language has no pack (caption prompts) in this stack
    "too_long",  # longer than data.max_length and cannot be cut
    "no_labels",  # nothing left for the loss
    "prepare_error",  # preparing the record raised (a tokenizer error, a bug in a plugin)
)


class BadSample(Exception):
    """A record that is skipped. ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class Malformed:
    """Placeholder a source yields for a record it could not parse (or decode:
    ``reason="bad_encoding"``)."""

    detail: str
    reason: str = "malformed"


@dataclass
class Sample:
    kind: str  # pairs | instruct | text
    lang: str
    where: str  # "train.jsonl:17": names the record in reports
    image: Any = None  # path | PIL.Image | bytes | {"bytes", "path"} | None
    text: str | None = None  # pairs: caption; text: the document
    turns: list[Turn] | None = None  # instruct
    image_root: str | None = None
    index: int = -1  # position in the global record stream (seeds per-sample randomness)

    @property
    def has_image(self) -> bool:
        return self.image is not None


def infer_kind(record: dict[str, Any]) -> str:
    """The kind of an in-memory record: conversations -> instruct, image -> pairs, else text."""
    if "conversations" in record:
        return "instruct"
    if any(record.get(k) is not None for k in IMAGE_FIELDS):
        return "pairs"
    return "text"


def _pick(record: dict[str, Any], explicit: str | None, candidates: tuple[str, ...]) -> tuple[str | None, Any]:
    if explicit:
        return explicit, record.get(explicit)
    for key in candidates:
        if record.get(key) is not None:
            return key, record[key]
    return None, None


def _conversation(raw: Any, where: str) -> list[Turn]:
    if not isinstance(raw, list) or not raw:
        raise BadSample("bad_conversation", f"{where}: 'conversations' must be a non-empty list")
    turns = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise BadSample("bad_conversation", f"{where}: turn {i} is not an object")
        speaker = item.get("from", item.get("role"))
        value = item.get("value", item.get("content"))
        if speaker not in ROLES:
            raise BadSample("bad_conversation", f"{where}: turn {i} has speaker {speaker!r} "
                                                "(use human/gpt or user/assistant)")
        if not isinstance(value, str):
            raise BadSample("bad_conversation", f"{where}: turn {i} has no text 'value'")
        turns.append(Turn(ROLES[speaker], value))
    answers = [t for t in turns if t.role == "assistant"]
    if not answers:
        raise BadSample("bad_conversation", f"{where}: no answer (gpt) turn")
    if any(not t.content.strip() for t in answers):
        raise BadSample("empty_text", f"{where}: an answer turn is empty")
    return turns


def normalise(
    raw: Any,
    *,
    kind: str | None,
    lang: str,
    where: str,
    image_root: str | None = None,
    text_field: str | None = None,
    image_field: str | None = None,
) -> Sample:
    """A checked :class:`Sample` from a raw record, or :class:`BadSample`."""
    if isinstance(raw, Malformed):
        raise BadSample(raw.reason, f"{where}: {raw.detail}")
    if not isinstance(raw, dict):
        raise BadSample("malformed", f"{where}: expected an object, got {type(raw).__name__}")
    kind = kind or infer_kind(raw)
    record_lang = raw.get("lang") or raw.get("language") or lang
    if not isinstance(record_lang, str):
        raise BadSample("malformed", f"{where}: 'lang' must be a string")
    _, image = _pick(raw, image_field, IMAGE_FIELDS)
    if kind == "instruct":
        turns = _conversation(raw.get("conversations"), where)
        markers = sum(t.content.count(IMAGE_MARKER) for t in turns)
        if markers > 1:
            raise BadSample("bad_conversation", f"{where}: {markers} '<image>' markers; one image per "
                                                "conversation is supported")
        if image is not None and markers == 0:
            first = next(i for i, t in enumerate(turns) if t.role == "user")
            turns[first] = Turn("user", f"{IMAGE_MARKER}\n{turns[first].content}")
        if image is None and markers:
            raise BadSample("missing_image", f"{where}: the conversation has '<image>' but no image")
        return Sample("instruct", record_lang, where, image=image, turns=turns, image_root=image_root)
    _, text = _pick(raw, text_field, TEXT_FIELDS)
    if not isinstance(text, str) or not text.strip():
        raise BadSample("empty_text", f"{where}: empty or missing text")
    if kind == "pairs":
        if image is None:
            raise BadSample("missing_image", f"{where}: no image field")
        return Sample("pairs", record_lang, where, image=image, text=text.strip(), image_root=image_root)
    if kind == "text":
        return Sample("text", record_lang, where, text=text)
    raise BadSample("malformed", f"{where}: unknown record kind {kind!r}")


def open_image(sample: Sample):
    """The sample's image as RGB PIL, or :class:`BadSample` (missing / corrupt)."""
    import io
    from pathlib import Path

    from ..errors import DataError
    from ..imaging import load_image

    source = sample.image
    if isinstance(source, dict):  # datasets' Image(decode=False): {"bytes", "path"}
        source = source.get("bytes") or source.get("path")
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_absolute() and sample.image_root:
            path = Path(sample.image_root) / path
        if not path.exists():
            raise BadSample("missing_image", f"{sample.where}: image not found: {path}")
        source = path
    elif source is None:
        raise BadSample("missing_image", f"{sample.where}: no image")
    try:
        # In-memory bytes too: load_image applies the pixel limit (MPM_MAX_IMAGE_PIXELS)
        # from the header, so a decompression bomb in a dataset is one skipped record.
        return load_image(source)
    except DataError as exc:
        raise BadSample("corrupt_image", f"{sample.where}: {exc}") from None
    except Exception as exc:  # PIL raises many types for truncated/odd files
        raise BadSample("corrupt_image", f"{sample.where}: {type(exc).__name__}: {exc}") from None
