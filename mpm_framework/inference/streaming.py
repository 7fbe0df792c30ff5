"""Incremental detokenisation for streaming answers.

Decoding a prefix of the ids does not always give a prefix of the final text:
a multi-byte character may be cut in half (decoded as U+FFFD), a stop string
may be half-way generated, trailing spaces vanish when the answer is stripped,
and some tokenizers tidy spaces before punctuation. The stream therefore only
releases text that can no longer change, so the pieces always concatenate to
exactly the non-streamed answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..contracts.llm import PivotLLM
from ..errors import ExecutionError
from .generation import cut_at_stop


class TextStream:
    """Feed tokens with :meth:`push`; each call returns the newly stable text."""

    def __init__(self, llm: PivotLLM, stop_strings: Sequence[str] = ()) -> None:
        self.llm = llm
        self.stop_strings = tuple(stop_strings)
        self.ids: list[int] = []
        self.emitted = ""
        self.stopped = False

    def _text(self) -> tuple[str, bool]:
        text, hit = cut_at_stop(self.llm.decode_text(self.ids), self.stop_strings)
        return text.lstrip(), hit

    def _release(self, stable: str) -> str:
        if not stable.startswith(self.emitted):
            return ""  # an earlier guess changed; wait for the final text
        piece, self.emitted = stable[len(self.emitted):], stable
        return piece

    def push(self, token: int) -> str:
        if self.stopped:
            return ""
        self.ids.append(int(token))
        text, hit = self._text()
        if hit:
            self.stopped = True
            return self._release(text.rstrip())
        text = text.rstrip("\ufffd")  # an incomplete multi-byte character
        text = text[: len(text) - self._stop_prefix_length(text)]
        return self._release(text.rstrip())

    def _stop_prefix_length(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that could start a stop string."""
        best = 0
        for stop in self.stop_strings:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best

    def finish(self) -> str:
        """The rest of the final answer (what :func:`decode_answer` returns)."""
        final = self._text()[0].strip()
        if not final.startswith(self.emitted):
            raise ExecutionError(  # the tokenizer rewrote text already released
                f"streamed text {self.emitted!r} is not a prefix of the answer {final!r}: this tokenizer's "
                "decoding changes text it already produced; ask without streaming (--no-stream, or "
                "stream=false on the server)"
            )
        piece, self.emitted = final[len(self.emitted):], final
        return piece
