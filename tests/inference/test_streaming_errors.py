"""A tokenizer whose decoding rewrites text the stream already released ends
the stream with an MPMError (still a RuntimeError) that says to ask without
streaming."""

import pytest

from mpm_framework.errors import MPMError
from mpm_framework.inference.streaming import TextStream


class _RewritingDecoder:
    """Decodes [1] as 'ab' but [1, 2] as 'xb c': the released 'ab' changes."""

    def decode_text(self, ids):
        return {(1,): "ab", (1, 2): "xb c"}[tuple(ids)]


def test_rewritten_stream_says_to_ask_without_streaming():
    stream = TextStream(_RewritingDecoder())
    assert stream.push(1) == "ab"
    assert stream.push(2) == ""  # not a continuation of what was released: held back
    with pytest.raises(MPMError, match="without streaming") as info:
        stream.finish()
    assert isinstance(info.value, RuntimeError)
