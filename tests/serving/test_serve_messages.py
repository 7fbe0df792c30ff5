"""OpenAI messages -> MPM turns: the prompt a client's resent history builds is
the one the Python History path builds turn after turn."""

from __future__ import annotations

import pytest

from mpm_framework.contracts.prompt import IMAGE_MARKER, Turn
from mpm_framework.serving.errors import APIError
from mpm_framework.serving.images import ImageLimits, content_hash
from mpm_framework.serving.messages import to_conversation
from mpm_framework.serving.schemas import parse_chat_request


def _messages(*messages):
    return parse_chat_request({"model": "m", "messages": list(messages)}).messages


def _image(support, seed=0):
    return {"type": "image_url", "image_url": {"url": support.data_url(support.png_bytes(seed))}}


def test_history_with_an_image_matches_the_history_path(support):
    first = {"role": "user", "content": [{"type": "text", "text": "q1"}, _image(support)]}  # image after the text
    conversation = to_conversation(_messages(
        {"role": "developer", "content": "be brief"}, first, {"role": "assistant", "content": "a1"},
        {"role": "user", "content": [_image(support), {"type": "text", "text": "q2"}]},  # the same image again
    ), ImageLimits())
    assert conversation.turns == [Turn("system", "be brief"), Turn("user", f"{IMAGE_MARKER}\nq1"),
                                  Turn("assistant", "a1"), Turn("user", "q2")]
    assert conversation.image_key == content_hash(support.png_bytes(0))


@pytest.mark.parametrize(("messages", "needle"), [
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "last message must be the user's"),
    ([{"role": "user", "content": "  "}], "needs text or an image"),
    ([{"role": "user", "content": f"look {IMAGE_MARKER}"}], "image marker"),
])
def test_refusals_name_the_message(messages, needle):
    with pytest.raises(APIError, match=needle) as info:
        to_conversation(_messages(*messages), ImageLimits())
    assert info.value.status == 400 and info.value.param.startswith("messages[")


def test_one_image_per_conversation(support):
    with pytest.raises(APIError, match="one image per conversation"):
        to_conversation(_messages(
            {"role": "user", "content": [_image(support, 0), {"type": "text", "text": "q1"}]},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": [_image(support, 1), {"type": "text", "text": "q2"}]},
        ), ImageLimits())


def test_schema_refusals_name_the_field():
    for body, param in (({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
                         "temperature"),
                        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 1.5}, "seed"),
                        ({"model": "m", "messages": [{"role": "user", "content": "x", "extra": 1}]},
                         "messages[0].extra"),
                        ({"messages": [{"role": "user", "content": "x"}]}, "model")):
        with pytest.raises(APIError) as info:
            parse_chat_request(body)
        assert info.value.param == param and param.split("[")[0] in info.value.message
