"""Prompts in the model's own chat format, with image slots and answer-only labels.

The conversation is rendered with the tokenizer's chat template (Jinja, via
``apply_chat_template``) and tokenised once, as the model saw text in training.
Which tokens are labels is found at the *text* level: each assistant answer's
span is the difference between the conversation rendered up to the answer
with a generation prompt and the conversation rendered through the answer.
That difference is exactly what the model must produce after the generation
prompt (the answer plus the template's end-of-turn marker), whatever the
template looks like, so no template is special-cased. Character spans map to
tokens through the fast tokenizer's offsets.
"""

from __future__ import annotations

from typing import Any

from mpm_framework.contracts.prompt import IGNORE_INDEX, IMAGE_MARKER, PromptEncoding, Turn
from mpm_framework.errors import ConfigError, DataError, did_you_mean

ROLES = ("system", "user", "assistant")

# Used when a tokenizer ships without a chat template (base checkpoints). The
# generation prompt ends in a colon; the answer starts with a space, which
# byte-level BPE and SentencePiece both attach to the answer's first word, so
# the prompt's tokens are a prefix of the full conversation's tokens.
FALLBACK_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% else %}Assistant: {{ m['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)

# The toy world's tokenizer has role tokens; text between special tokens is
# tokenised on its own, so prompt/answer boundaries are always token boundaries.
TOY_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def load_template(value: str) -> str:
    """A template given inline or as a path to a ``.jinja`` file."""
    from pathlib import Path

    if value.endswith((".jinja", ".j2")) or ("{%" not in value and "{{" not in value):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"chat_template {value!r} is neither a Jinja template nor an existing .jinja file"
            )
        return path.read_text(encoding="utf-8")
    return value


class PromptFormatter:
    """Turns conversations into :class:`PromptEncoding` for one tokenizer."""

    def __init__(self, tokenizer: Any, image_token: str, chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.image_token = image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        self.template = chat_template or tokenizer.chat_template or FALLBACK_CHAT_TEMPLATE
        if isinstance(self.template, dict):  # several named templates: take the default one
            self.template = self.template.get("default") or next(iter(self.template.values()))

    # -- rendering ---------------------------------------------------------------
    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                chat_template=self.template,
            )
        except Exception as exc:  # jinja raises for conversations a template forbids
            raise DataError(
                f"the model's chat template rejected the conversation ({type(exc).__name__}: {exc}). "
                "Some templates require alternating user/assistant turns or forbid system turns."
            ) from None

    def messages(self, turns: list[Turn], num_image_tokens: int) -> list[dict[str, str]]:
        out = []
        for turn in turns:
            if turn.role not in ROLES:
                raise DataError(f"unknown conversation role {turn.role!r}.{did_you_mean(turn.role, ROLES)}"
                                f" Roles: {', '.join(ROLES)}")
            content = turn.content.replace(IMAGE_MARKER, self.image_token * num_image_tokens)
            out.append({"role": turn.role, "content": content})
        return out

    def answer_spans(self, messages: list[dict[str, str]], full: str) -> list[tuple[int, int]]:
        """Character spans of ``full`` the model must produce (one per assistant turn)."""
        spans: list[tuple[int, int]] = []
        cursor = 0
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self.render(messages[:i], add_generation_prompt=True) if i else None
            through = self.render(messages[: i + 1], add_generation_prompt=False)
            if prompt is not None and through.startswith(prompt) and full.startswith(through):
                start, end = len(prompt), len(through)
            else:  # a template that renders history differently: find the answer text itself
                start = full.find(message["content"], cursor)
                if start < 0:
                    raise DataError("could not locate an assistant answer in the rendered prompt; "
                                    "set model.llm.chat_template to a template that renders answers verbatim")
                end = start + len(message["content"])
                end += self._end_marker_length(full, end)
            end = start + len(full[start:end].rstrip())
            spans.append((start, end))
            cursor = end
        return spans

    def _end_marker_length(self, text: str, pos: int) -> int:
        for token in (self.tokenizer.eos_token, *self.tokenizer.all_special_tokens):
            if token and text.startswith(token, pos):
                return len(token)
        return 0

    # -- tokenising ----------------------------------------------------------------
    def _tokenize_with_spans(self, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[bool]]:
        """Token ids of ``text`` and whether each token starts inside a span."""
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = list(enc["input_ids"])
            inside = [any(s <= start < e for s, e in spans) for start, _ in enc["offset_mapping"]]
            return ids, inside
        # Slow tokenizers have no offsets: tokenise piece by piece at span boundaries.
        ids, inside, pos = [], [], 0
        for s, e in [*spans, (len(text), len(text))]:
            for piece, flag in ((text[pos:s], False), (text[s:e], True)):
                if piece:
                    piece_ids = self.tokenizer(piece, add_special_tokens=False)["input_ids"]
                    ids += piece_ids
                    inside += [flag] * len(piece_ids)
            pos = e
        return ids, inside

    def encode(self, turns: list[Turn], num_image_tokens: int = 0,
               add_generation_prompt: bool = False) -> PromptEncoding:
        messages = self.messages(turns, num_image_tokens)
        full = self.render(messages, add_generation_prompt)
        spans = self.answer_spans(messages, full)
        ids, inside = self._tokenize_with_spans(full, spans)
        labels = [t if flag else IGNORE_INDEX for t, flag in zip(ids, inside)]
        image_mask = [t == self.image_token_id for t in ids]
        expected = sum(t.content.count(IMAGE_MARKER) for t in turns) * num_image_tokens
        if sum(image_mask) != expected:
            raise DataError(
                f"the prompt holds {sum(image_mask)} image placeholder tokens, expected {expected}: "
                f"the chat template or the tokenizer altered the image token {self.image_token!r}"
            )
        return PromptEncoding(ids, labels, image_mask)

    def end_of_turn_id(self) -> int | None:
        """The token the template puts right after an answer (``<|im_end|>``,
        ``<|eot_id|>``, ``</s>``): generation stops on it."""
        messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
        try:
            full = self.render(messages, add_generation_prompt=False)
            (start, end), = self.answer_spans(messages, full)
        except (DataError, ValueError):
            return None
        ids, inside = self._tokenize_with_spans(full, [(start, end)])
        special = set(self.tokenizer.all_special_ids)
        answer = [t for t, flag in zip(ids, inside) if flag]
        tail = [t for t in answer if t in special]
        return tail[-1] if tail else None
