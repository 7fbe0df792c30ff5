"""Request validation errors raised inside the schema reach the client as a
400 that names the field and says what to send."""

import pytest

from mpm_framework.serving.errors import APIError
from mpm_framework.serving.schemas import parse_chat_request


def test_too_many_stop_sequences_is_a_400_naming_stop():
    body = {"model": "mpm", "messages": [{"role": "user", "content": "hi"}], "stop": ["a"] * 5}
    with pytest.raises(APIError, match="send 4 or fewer") as info:
        parse_chat_request(body)
    assert info.value.status == 400 and info.value.param == "stop"
