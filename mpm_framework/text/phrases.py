"""The UI phrases every language pack provides (``pack.phrases[key]``).

The chat and paint commands, the instruction data builder and the prompt
formats read these keys; a pack must define all of them (tests check it).
Placeholders in braces are filled with ``str.format``.
"""

from __future__ import annotations

PHRASE_KEYS: dict[str, str] = {
    "user": "label of the user's turns in a transcript ('User')",
    "assistant": "label of the model's turns ('Assistant')",
    "system": "system prompt: an assistant that answers questions about images, in this language",
    "image": "label of an attached image ('Image')",
    "answer_in_language": "an instruction to answer in this language ('Please answer in English.')",
    "paint_prompt": "prefix of a text-to-image prompt ('Paint: ')",
    "paint_saved": "message after painting; placeholder {path}",
    "chat_welcome": "greeting when an interactive chat starts; placeholder {image}",
    "chat_exit_hint": "how to leave the interactive chat",
    "chat_goodbye": "message when the chat ends",
}

PLACEHOLDERS: dict[str, tuple[str, ...]] = {"paint_saved": ("path",), "chat_welcome": ("image",)}


def missing_phrases(phrases: dict[str, str]) -> list[str]:
    """Keys a pack's ``phrases`` lacks, or whose placeholders are wrong."""
    bad = [k for k in PHRASE_KEYS if not phrases.get(k, "").strip()]
    for key, names in PLACEHOLDERS.items():
        if key in phrases and any("{" + n + "}" not in phrases[key] for n in names):
            bad.append(key)
    return bad
