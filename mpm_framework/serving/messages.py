"""OpenAI ``messages`` -> MPM conversation turns and the conversation's image.

The built-in stages train one image per conversation with the image marker at
the start of the user turn that shows it, which is exactly what
``stack.chat(image, question, history)`` builds turn after turn; a client that
resends the whole history with the image in its first user message therefore
gets the same prompt as the Python History path.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contracts.prompt import IMAGE_MARKER, Turn
from .errors import bad_request
from .images import ImageLimits, content_hash, read_image_url
from .schemas import Message

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass
class Conversation:
    turns: list[Turn]
    image: bytes | None = None  # the conversation's image, as sent
    image_key: str | None = None  # its content hash (the encoding cache's key)


def _parts(message: Message, index: int, limits: ImageLimits) -> tuple[str, list[tuple[str, bytes]]]:
    """The message's text and its images (hash, bytes)."""
    if message.content is None:
        return "", []
    if isinstance(message.content, str):
        return message.content, []
    texts, images = [], []
    for k, part in enumerate(message.content):
        param = f"messages[{index}].content[{k}]"
        if part.type == "text":
            if part.text is None:
                raise bad_request("a text part needs 'text'", param=f"{param}.text")
            texts.append(part.text)
        else:
            if part.image_url is None:
                raise bad_request("an image_url part needs 'image_url'", param=f"{param}.image_url")
            if message.role != "user":
                raise bad_request("only user messages may hold images", param=param)
            data = read_image_url(part.image_url.url, limits, param=f"{param}.image_url.url")
            images.append((content_hash(data), data))
    return "\n".join(texts), images


def to_conversation(messages: list[Message], limits: ImageLimits) -> Conversation:
    """Turns for the prompt, or a 400 naming the message at fault."""
    if messages[-1].role != "user":
        raise bad_request("the last message must be the user's (the one to answer)",
                          param=f"messages[{len(messages) - 1}].role")
    turns: list[Turn] = []
    image: bytes | None = None
    key: str | None = None
    for index, message in enumerate(messages):
        text, images = _parts(message, index, limits)
        if IMAGE_MARKER in text:
            raise bad_request(f"message text must not contain the image marker {IMAGE_MARKER!r}; send the image "
                              "as an image_url part", param=f"messages[{index}].content")
        first_here = False
        for digest, data in images:
            if key is None:
                key, image, first_here = digest, data, True
            elif digest != key:
                raise bad_request("this model talks about one image per conversation; start a new conversation "
                                  "for another image", param=f"messages[{index}].content")
        if message.role == "user" and not text.strip() and not images:
            raise bad_request("a user message needs text or an image", param=f"messages[{index}].content")
        if first_here:
            text = f"{IMAGE_MARKER}\n{text}"
        turns.append(Turn(ROLES[message.role], text))
    return Conversation(turns, image, key)
