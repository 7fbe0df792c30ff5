"""Inference: the model-agnostic decoding loop and chatting with a ChatStack.

``from mpm_framework.inference import GenerationConfig, generate, chat`` — the
stack methods ``ChatStack.chat / stream_chat / generate`` are the usual entry.
"""

from .chat import ChatStream, History, chat, generate_batch, stream_chat
from .generation import GenerationConfig, decode_answer, generate, iter_generate

__all__ = [
    "ChatStream",
    "GenerationConfig",
    "History",
    "chat",
    "decode_answer",
    "generate",
    "generate_batch",
    "iter_generate",
    "stream_chat",
]
