"""BEiT-3 as an MPM vision encoder, with VisCPM's query bridge."""

from __future__ import annotations

import contextlib
import logging
import random

import torch
from torch import nn

from mpm_framework.config.choices import torch_dtype
from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.vision import VisionEncoder
from mpm_framework.errors import ConfigError
from mpm_framework.imaging import INCEPTION_MEAN, INCEPTION_STD

from .checkpoint import LoadReport, load_into
from .config import Beit3Arch, Beit3Config, resolve_arch
from .modeling import Beit3

log = logging.getLogger(__name__)


def _empty_parameters():
    from accelerate import init_empty_weights

    return init_empty_weights(include_buffers=False)


class Beit3Encoder(VisionEncoder):
    """Images -> ``num_queries`` LLM-width tokens (or all image tokens).

    With queries, the encoder input is ``[CLS, patches, queries]`` and the
    multiway split sits after the image tokens, so the queries take the language
    expert and its position table; only the query outputs are kept and mapped.
    Parameter names match VisCPM's ``vpm`` module (``beit3.…``, ``query``,
    ``mapping.0``/``mapping.2``)."""

    image_mean = INCEPTION_MEAN
    image_std = INCEPTION_STD

    def __init__(
        self,
        arch: Beit3Arch,
        num_queries: int = 64,
        mapping_dim: int | None = None,
        attention: str = "sdpa",
        config: Beit3Config | None = None,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.config = Beit3Config() if config is None else config
        self.image_size = arch.image_size
        self.hidden_size = arch.hidden_size
        self.num_queries = num_queries
        self.beit3 = Beit3(arch, attention)
        self.beit3.reset_parameters()
        self.query = nn.Parameter(torch.zeros(num_queries, arch.hidden_size)) if num_queries else None
        self.mapping = (
            nn.Sequential(nn.Linear(arch.hidden_size, mapping_dim), nn.GELU(), nn.Linear(mapping_dim, mapping_dim))
            if mapping_dim
            else None
        )
        self.init_queries()
        self.load_report: LoadReport | None = None

    # -- contract ----------------------------------------------------------------
    @property
    def num_output_tokens(self) -> int:  # type: ignore[override]
        return self.num_queries or self.arch.num_image_tokens

    @property
    def owns_bridge(self) -> bool:  # type: ignore[override]
        return self.mapping is not None

    @property
    def output_dim(self) -> int:
        return self.mapping[-1].out_features if self.mapping is not None else self.hidden_size

    @classmethod
    def from_config(cls, config: Beit3Config, context: BuildContext) -> Beit3Encoder:
        arch = resolve_arch(config)
        dtype = torch_dtype(config.dtype, "model.vision.dtype")
        mapping_dim = None
        if config.mapping:
            if not config.num_queries:
                raise ConfigError("beit3 mapping needs queries: set num_queries > 0 or mapping: false")
            mapping_dim = config.mapping_dim or context.llm_hidden_size
            if not mapping_dim:
                raise ConfigError(
                    "beit3 mapping needs the LLM width: build it inside a stack or set mapping_dim"
                )
        if config.num_queries < 0:
            raise ConfigError(f"beit3 num_queries must be >= 0, got {config.num_queries}")
        if config.num_queries + 2 > arch.max_text_positions:  # queries take text rows 2.. (fairseq offset)
            raise ConfigError(
                f"beit3 num_queries={config.num_queries} needs {config.num_queries + 2} rows of the text "
                f"position table but it has {arch.max_text_positions} (max_text_positions)")
        from_file = bool(config.path) and not context.meta
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(config.seed)
            # Weights from a file: parameters on the meta device, the file's tensors assigned (one copy).
            with _empty_parameters() if from_file else contextlib.nullcontext():
                model = cls(arch, int(config.num_queries), mapping_dim, str(config.attention), config)
            if from_file:  # seeded like the rest: what the file lacks is initialised here
                model.load_checkpoint(config.path, config.checkpoint_format, strict=config.strict,
                                      dtype=dtype)
        if not context.meta:
            model.to(dtype)
            model.quantize_weights(config.quantize)
        return model

    def quantize_weights(self, mode: str) -> int:
        """``model.vision.quantize`` applied in place (int8: the linear layers of
        both experts and the mapping): at build time by ``from_config``, after a
        run's weights are loaded by ``load_stack``."""
        from mpm_framework.quantize import check_quantize, quantize_linear_int8

        if check_quantize(mode, "model.vision.quantize") == "none":
            return 0
        return quantize_linear_int8(self, field="model.vision.quantize")

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        tokens = self.beit3.vision_embed(pixel_values)
        num_image = tokens.shape[1]
        if self.query is None:
            out, _ = self.beit3.encoder(tokens, split=num_image)
            return out
        queries = self.query.to(tokens.dtype).unsqueeze(0).expand(tokens.shape[0], -1, -1)
        out, _ = self.beit3.encoder(torch.cat([tokens, queries], dim=1), split=num_image)
        out = out[:, num_image:]
        return self.mapping(out) if self.mapping is not None else out

    # -- weights -----------------------------------------------------------------
    @torch.no_grad()
    def init_queries(self) -> None:
        """VisCPM's initialisation: truncated normal (std 0.02), then the first
        query from text token 0 (BOS) and the last from token 2 (EOS)."""
        if self.query is None:
            return
        nn.init.trunc_normal_(self.query, std=0.02)
        text = self.beit3.text_embed.weight
        self.query[0].copy_(text[0])
        if self.num_queries > 1:
            self.query[-1].copy_(text[2])

    def load_checkpoint(self, path: str, fmt: str = "auto", strict: bool = True,
                        dtype: torch.dtype | None = None) -> LoadReport:
        """Load Microsoft, VisCPM, torchscale or mpm weights (as ``dtype`` when
        given); queries the file does not carry are re-initialised from the
        loaded text embedding."""
        report = load_into(self, path, fmt, strict=strict, dtype=dtype)
        if "query" in report.initialised:
            self.init_queries()
        log.info("%s", report.summary())
        if report.missing or report.unexpected:
            log.warning("beit3 checkpoint keys did not match:\n%s", report.summary())
        self.load_report = report
        return report

    # -- training ----------------------------------------------------------------
    def trainable_groups(self) -> dict[str, list[str]]:
        names = [n for n, _ in self.named_parameters()]
        groups = {
            "patch_embed": ["beit3.vision_embed."],
            "text_embed": ["beit3.text_embed."],
            "vision_expert": [n for n in names if ".A." in n],
            "language_expert": [n for n in names if ".B." in n],
            "encoder": ["beit3.encoder."],
            "backbone": ["beit3."],
        }
        if self.query is not None:
            groups["queries"] = ["query"]
        if self.mapping is not None:
            groups["mapping"] = ["mapping."]
        groups["bridge"] = [p for g in ("queries", "mapping") for p in groups.get(g, [])]
        return groups

    def freeze_sets(self) -> tuple[list[str], list[str]]:
        """(trainable, frozen) group names of VisCPM's policy under this config.

        The text embedding stays frozen: the image path never reads it (an
        unused trainable parameter also breaks DDP without
        ``find_unused_parameters``)."""
        trainable = []
        if self.query is not None:
            trainable += ["language_expert", "queries"]
        if self.mapping is not None:
            trainable.append("mapping")
        if self.config.train_vision_expert or self.query is None:
            trainable.append("vision_expert")
        frozen = []
        if self.config.freeze_patch_embed:
            frozen.append("patch_embed")
        else:
            trainable.append("patch_embed")
        return trainable, frozen

    def bridge_groups(self) -> list[str]:
        """What the stages train as this encoder's bridge: VisCPM's visual
        module (queries, mapping, the language expert they pass through, and
        the vision expert with ``train_vision_expert``)."""
        return self.freeze_sets()[0] if self.query is not None else []

    def enable_gradient_checkpointing(self) -> None:
        self.beit3.encoder.gradient_checkpointing = True

    # -- preprocessing -----------------------------------------------------------
    def image_transform(self, train: bool = False, rng: random.Random | None = None):
        from .randaug import RandAugment
        from .transforms import Beit3ImageTransform

        cfg = self.config
        rng = rng or random.Random()
        augment = None
        if train and cfg.randaugment:
            augment = RandAugment(int(cfg.randaugment_n), float(cfg.randaugment_m), list(cfg.randaugment_ops), rng=rng)
        return Beit3ImageTransform(
            self.image_size, self.image_mean, self.image_std, train=train,
            scale=tuple(cfg.crop_scale), flip=bool(cfg.hflip),
            augment=augment, rng=rng,
        )
