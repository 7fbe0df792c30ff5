"""PaintStack: pivot LLM (frozen) -> adapter -> image decoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..contracts.decoder import ImageDecoder
from ..contracts.language import LanguagePack
from ..contracts.llm import PivotLLM
from ..errors import ConfigError
from .trainable import apply_freeze_sets

EMPTY_CAPTION = ""


class PaintStack(nn.Module):
    """Text -> image. The pivot LLM only *reads* prompts: it is frozen (and kept
    in eval mode) so that its cross-lingual alignment, learnt from text, is what
    carries an English-trained decoder to other languages."""

    def __init__(
        self,
        llm: PivotLLM,
        decoder: ImageDecoder,
        languages: dict[str, LanguagePack] | None = None,
        config: Any = None,
    ) -> None:
        super().__init__()
        self.llm, self.decoder = llm, decoder
        self.languages = languages or {}
        self.config = config
        # Share of training captions replaced by the empty caption, so that the
        # decoder also learns the unconditional model that guidance subtracts.
        self.caption_dropout = float(getattr(_decoder_config(config), "caption_dropout", 0.1))
        self.llm.requires_grad_(False)
        self.llm.eval()

    # -- composition -------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        return {"llm": self.llm, "decoder": self.decoder}

    def default_trainable(self) -> list[str]:
        """The decoder's configured trainable set (``adapter`` by default in VisCPM
        terms, optionally with cross-attention or the whole UNet)."""
        if hasattr(self.decoder, "default_trainable"):
            return list(self.decoder.default_trainable())
        return ["decoder"]

    def set_trainable(self, trainable: list[str], frozen: list[str] = ()) -> dict[str, tuple[int, int]]:
        bad = [spec for spec in trainable if spec.partition(".")[0] == "llm"]
        if bad:
            raise ConfigError(
                f"the paint stage keeps the pivot LLM frozen, but the trainable set names {', '.join(bad)}; "
                "train decoder groups only (decoder.adapter, decoder.cross_attention, decoder.unet)"
            )
        return apply_freeze_sets(self.components(), list(trainable), list(frozen))

    def train(self, mode: bool = True) -> PaintStack:
        super().train(mode)
        self.llm.eval()  # frozen: no dropout, whatever the stage does
        return self

    @property
    def device(self) -> torch.device:
        return next(self.decoder.parameters()).device

    @property
    def image_size(self) -> int:
        return int(self.decoder.image_size)

    def image_transform(self, train: bool = False):
        """PIL -> (3, H, W) in [-1, 1] at the decoder's resolution. No flips, even
        in training: captions name positions ('on the left')."""
        from ..imaging import ImageTransform

        return ImageTransform(self.image_size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), train=False)

    # -- prompts -----------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Final-layer LLM hidden states of each prompt and their mask."""
        # an LLM may encode paint prompts its own way (CPM-Bee: VisCPM's {"caption", "objects"})
        encode = getattr(self.llm, "encode_paint_prompt", None) or self.llm.encode_text
        encodings = [encode(p) for p in prompts]
        batch = self.llm.collate(encodings, padding_side="right")
        batch = {k: v.to(next(self.llm.parameters()).device) for k, v in batch.items()}
        out = self.llm(self.llm.embed_tokens(batch["input_ids"]), batch, output_hidden_states=True)
        assert out.hidden_states is not None
        return out.hidden_states[-1], batch["attention_mask"]

    def encode_negative(self, negative_prompt: str = EMPTY_CAPTION) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional branch of guidance: the empty caption by default."""
        return self.encode_prompts([negative_prompt])

    def drop_captions(self, prompts: list[str]) -> list[str]:
        if not self.training or self.caption_dropout <= 0:
            return list(prompts)
        drop = torch.rand(len(prompts)) < self.caption_dropout
        return [EMPTY_CAPTION if d else p for p, d in zip(prompts, drop.tolist(), strict=True)]

    # -- training ----------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """The paint objective on ``{"images": (B, 3, H, W) in [-1, 1], "prompts": [...]}``."""
        images, prompts = batch["images"], batch["prompts"]
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts in the batch")
        cond, mask = self.encode_prompts(self.drop_captions(prompts))
        return self.decoder.training_loss(images, cond, mask)

    # -- inference (implemented in mpm_framework.paint) ----------------------------
    def paint(self, prompts: str | list[str], **options: Any):
        """Images for each prompt: see :func:`mpm_framework.paint.sampling.paint`."""
        from ..paint.sampling import paint

        return paint(self, prompts, **options)


def _decoder_config(config: Any) -> Any:
    try:
        return config.model.decoder
    except AttributeError:
        return None
