"""Image-text scorers for reranking painted images (VisCPM-Paint reranks four
candidates with a Chinese CLIP).

Any object with ``score(images, text) -> list[float]`` (higher is better)
works; :class:`CLIPScorer` wraps a local CLIP-style checkpoint through
transformers (CLIP, Chinese-CLIP, SigLIP: whatever ``AutoModel`` builds that
returns ``logits_per_image``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError


class ImageTextScorer(Protocol):
    def score(self, images: list[Any], text: str) -> list[float]:
        """One score per image for how well it shows ``text``."""


class CLIPScorer:
    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        from transformers import AutoModel, AutoProcessor

        root = Path(path).expanduser()
        if not (root / "config.json").is_file():
            raise ConfigError(f"no CLIP-style checkpoint at {root} (config.json missing)")
        from ..security import allow_remote_code

        remote = allow_remote_code(root, local=True)  # shipped code only with --trust-remote-code
        try:
            self.model = AutoModel.from_pretrained(root, use_safetensors=True,
                                                   trust_remote_code=remote).to(device).eval()
            self.processor = AutoProcessor.from_pretrained(root, trust_remote_code=remote)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load the reranking model at {root}: {first}") from None
        self.device = device

    def score(self, images: list[Any], text: str) -> list[float]:
        import torch

        inputs = self.processor(text=[text], images=images, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.no_grad():
            out = self.model(**inputs)
        if getattr(out, "logits_per_image", None) is None:
            raise ConfigError(f"{type(self.model).__name__} returns no logits_per_image: not a CLIP-style model")
        return out.logits_per_image[:, 0].float().tolist()
