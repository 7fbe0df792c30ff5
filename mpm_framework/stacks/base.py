"""What a training stage (or the trainer) may ask of a stack.

Three stacks share this base: :class:`~.chat.ChatStack` (image -> text),
:class:`~.paint.PaintStack` (text -> image) and :class:`~.text.TextStack` (the
pivot LLM alone, for text-only stages). A stage tells them apart by ``kind`` and
reads only the members declared here; everything else it needs comes through
the component contracts (``stack.llm`` is a :class:`PivotLLM`, ``stack.vision``
a :class:`VisionEncoder`, ``stack.decoder`` an :class:`ImageDecoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ..contracts.language import LanguagePack
from ..contracts.llm import PivotLLM
from .trainable import apply_freeze_sets


class Stack(nn.Module):
    """Base of the composed models.

    Declared members:

    * ``kind``: ``"chat"``, ``"paint"`` or ``"text"`` (what stages check);
    * ``llm``: the pivot LLM every stack has; ``languages``: loaded language
      packs by code; ``config``: the composed config (or None);
    * :meth:`components`: ``{name: module}`` for freeze sets, checkpointing and
      gradient checkpointing;
    * :meth:`set_trainable`: apply ``component[.group]`` freeze sets;
    * :meth:`image_transform`: PIL -> tensor for the stack's images, or None
      for a stack that takes no images;
    * ``placed_on``: None, or the device inputs go to when accelerate placed
      the layers across devices (``mpm_framework.inference.offload``; offloaded
      weights sit on the meta device between calls).
    """

    kind: ClassVar[str] = ""
    llm: PivotLLM
    languages: dict[str, LanguagePack]
    config: Any
    placed_on: torch.device | None = None

    def components(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def set_trainable(self, trainable: list[str], frozen: list[str] = ()) -> dict[str, tuple[int, int]]:
        """Freeze everything, unfreeze ``trainable``, freeze ``frozen``; returns
        ``{component: (trainable_params, total_params)}``."""
        return apply_freeze_sets(self.components(), list(trainable), list(frozen))

    def image_transform(self, train: bool = False) -> Callable[[Any], torch.Tensor] | None:
        """PIL.Image -> tensor for this stack's image input; None: no images."""
        return None

    def enable_gradient_checkpointing(self) -> None:
        """Turn it on in every component (each ignores it when it has no layers)."""
        for module in self.components().values():
            if module is not None:
                module.enable_gradient_checkpointing()
