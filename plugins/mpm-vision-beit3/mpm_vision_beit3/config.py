"""BEiT-3 config and architecture presets (torch-free: read by ``mpm plugins list``
and by config validation before any model is built)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from mpm_framework.config.choices import Dtype, Quantize
from mpm_framework.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Beit3Arch:
    """The resolved shape of a BEiT-3 model."""

    hidden_size: int
    num_layers: int
    num_heads: int
    ffn_size: int
    vocab_size: int
    max_text_positions: int  # rows of the language expert's position table
    image_size: int
    patch_size: int
    layernorm_eps: float = 1e-5

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_image_tokens(self) -> int:
        return self.num_patches + 1  # CLS first

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


# Base and large are unilm/beit3's `_get_base_config` / `_get_large_config`
# (vocab 64010, 1024 text positions, 224 px / 16 px patches). Tiny is for tests
# and the toy world: 32 px images, 8 px patches -> 16 patches + CLS; its text
# table has 66 rows (2 offset + 64 positions) so VisCPM's 64 queries fit.
PRESETS: dict[str, Beit3Arch] = {
    "tiny": Beit3Arch(32, 2, 4, 64, 64, 66, 32, 8),
    "base": Beit3Arch(768, 12, 12, 3072, 64010, 1024, 224, 16),
    "large": Beit3Arch(1024, 24, 16, 4096, 64010, 1024, 224, 16),
}

_ARCH_FIELDS = [f.name for f in fields(Beit3Arch)]


@dataclass
class Beit3Config:
    """BEiT-3 with VisCPM's query bridge.

    ``num_queries`` learned queries are appended after the image tokens and take
    the language expert; only their outputs are returned, mapped to the LLM width
    by a Linear-GELU-Linear MLP (``mapping``). With the bridge the encoder's output
    already has the LLM width: pair it with the ``identity`` connector.
    ``num_queries: 0`` returns all image tokens (CLS + patches) at the encoder
    width for a connector to map.

    ``path`` is a checkpoint file (``.pth``/``.pt``/``.bin``/``.safetensors``) or a
    directory holding one: Microsoft's BEiT-3 release (``{"model": {"beit3.…"}}``),
    a VisCPM-Chat checkpoint (``vpm.beit3.…``, ``query``, ``mapping.*``; the
    ``llm.*`` part is skipped) or this plugin's own safetensors export.
    ``checkpoint_format`` is ``auto``, ``microsoft``, ``viscpm`` or ``mpm``.

    Recommended trainable sets (VisCPM's recipe; ``freeze_sets()`` returns them
    from the two flags below; the stages apply them through ``bridge_groups()``):

    - align (stage 1): ``vision.queries``, ``vision.mapping``,
      ``vision.language_expert`` (+ ``vision.vision_expert`` with
      ``train_vision_expert``); the LLM frozen.
    - instruct (stage 2): the same plus the LLM if asked; ``vision.patch_embed``
      stays frozen (``freeze_patch_embed``).

    Architecture fields left ``None`` take the preset's value.
    """

    name: str = "beit3"
    preset: str = "large"  # tiny | base | large
    path: str = ""
    checkpoint_format: str = "auto"  # auto | microsoft | viscpm | mpm
    strict: bool = True  # missing / unknown backbone keys are an error, not a warning
    num_queries: int = 64
    mapping: bool = True
    mapping_dim: int | None = None  # default: the LLM width from the stack
    freeze_patch_embed: bool = True
    train_vision_expert: bool = False
    attention: str = "sdpa"  # sdpa | eager
    dtype: Dtype = "fp32"  # fp32 | bf16 | fp16 (VisCPM runs fp16)
    quantize: Quantize = "none"  # none | int8: int8 linear layers for inference (CPU, fp32; mpm_framework.quantize)
    seed: int = 0
    # architecture overrides (None: the preset's)
    image_size: int | None = None
    patch_size: int | None = None
    hidden_size: int | None = None
    num_layers: int | None = None
    num_heads: int | None = None
    ffn_size: int | None = None
    vocab_size: int | None = None
    max_text_positions: int | None = None
    layernorm_eps: float | None = None
    # training augmentation (VisCPM's build_transform(is_train=True))
    randaugment: bool = True
    randaugment_n: int = 2
    randaugment_m: int = 7
    randaugment_ops: list[str] = field(
        default_factory=lambda: [
            "Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness",
            "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate",
        ]
    )
    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    hflip: bool = True


def resolve_arch(config) -> Beit3Arch:
    """The preset with the config's overrides applied, validated."""
    preset = str(config.preset)
    if preset not in PRESETS:
        raise ConfigError(
            f"unknown BEiT-3 preset '{preset}'.{did_you_mean(preset, PRESETS)} "
            f"Presets: {', '.join(PRESETS)}"
        )
    overrides = {k: getattr(config, k) for k in _ARCH_FIELDS if getattr(config, k, None) is not None}
    arch = replace(PRESETS[preset], **overrides)
    if arch.hidden_size % arch.num_heads:
        raise ConfigError(f"beit3 hidden_size {arch.hidden_size} is not divisible by num_heads {arch.num_heads}")
    if arch.image_size % arch.patch_size:
        raise ConfigError(f"beit3 image_size {arch.image_size} is not a multiple of patch_size {arch.patch_size}")
    if arch.vocab_size < 3:
        raise ConfigError("beit3 vocab_size must be at least 3 (queries start from text tokens 0 and 2)")
    return arch
