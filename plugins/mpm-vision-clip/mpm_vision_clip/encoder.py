"""CLIP and SigLIP vision towers (transformers) as MPM vision encoders."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from mpm_framework.config.choices import torch_dtype
from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.vision import VisionEncoder
from mpm_framework.errors import ConfigError, MPMError

from .config import ClipVisionConfig, SiglipVisionConfig
from .preprocess import (
    ProcessorSpec,
    ProcessorTransform,
    clip_defaults,
    read_processor_config,
    siglip_defaults,
)

log = logging.getLogger(__name__)

_ATTENTION = ("sdpa", "eager")


def resolve_feature_layer(feature_layer: int, num_layers: int) -> int:
    """How many layers produce the selected hidden state (LLaVA indexing:
    ``hidden_states[feature_layer]`` of ``num_layers + 1`` states)."""
    n = feature_layer if feature_layer >= 0 else num_layers + 1 + feature_layer
    if not 0 <= n <= num_layers:
        raise ConfigError(
            f"feature_layer {feature_layer} is out of range for a {num_layers}-layer tower: "
            f"use -{num_layers + 1}..{num_layers} (-1 last layer, -2 penultimate, 0 embeddings)"
        )
    return n


class HFVisionTower(VisionEncoder):
    """A transformers vision tower cut at ``feature_layer``.

    Layers after the feature layer, the final/pooling LayerNorm and SigLIP's
    attention-pooling head never reach the features, so they are removed: less
    memory, and every remaining parameter receives a gradient (DDP needs no
    ``find_unused_parameters``). What the tower returns is then exactly
    ``hidden_states[feature_layer]`` of the full model."""

    family = "clip"
    has_cls = True
    config_class: type = ClipVisionConfig
    feature_layer: int = -2
    _select: int | None = None  # hidden-state index to read when the tower is not pruned

    def __init__(self, model: nn.Module, keep_cls: bool, spec: ProcessorSpec,
                 pad_to_square: bool = False, num_layers_total: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.keep_cls = keep_cls and self.has_cls
        self.spec, self.pad_to_square = spec, pad_to_square
        cfg = model.config
        self.hidden_size = cfg.hidden_size
        self.image_size = spec.output_size
        self.image_mean = tuple(spec.image_mean)
        self.image_std = tuple(spec.image_std)
        self.num_layers_total = num_layers_total or cfg.num_hidden_layers
        if self.image_size != cfg.image_size:
            raise ConfigError(
                f"the preprocessor makes {self.image_size} px images but the {self.family} tower expects "
                f"{cfg.image_size} px ({spec.source})"
            )
        num_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.num_output_tokens = num_patches + int(self.keep_cls)
        self.num_input_tokens = num_patches + int(self.has_cls)  # the tower runs on CLS too (planning)
        self._strip_unused_heads()

    # -- construction --------------------------------------------------------------
    @staticmethod
    def _model_classes():
        from transformers import CLIPVisionConfig, CLIPVisionModel

        return CLIPVisionConfig, CLIPVisionModel

    def _tower(self) -> nn.Module:
        return getattr(self.model, "vision_model", self.model)  # transformers 4.x nests it

    def _strip_unused_heads(self) -> None:
        tower = self._tower()
        tower.post_layernorm = nn.Identity()
        if hasattr(tower, "head"):
            del tower.head
            tower.use_head = False

    @classmethod
    def _defaults(cls, image_size: int) -> ProcessorSpec:
        return clip_defaults(image_size)

    @classmethod
    def from_config(cls, config: ClipVisionConfig, context: BuildContext) -> HFVisionTower:
        if config.keep_cls and not cls.has_cls:
            raise ConfigError(f"{cls.family} has no CLS token: set keep_cls: false")
        if config.attn_implementation not in _ATTENTION:
            raise ConfigError(f"attn_implementation must be one of {', '.join(_ATTENTION)}, "
                              f"not '{config.attn_implementation}'")
        config_cls, model_cls = cls._model_classes()
        dtype = torch_dtype(config.dtype, "model.vision.dtype")
        if config.path:
            path = Path(config.path).expanduser()
            if not path.is_dir():
                raise ConfigError(f"{cls.family} checkpoint directory not found: {path}")
            cls._check_model_type(path)
            hf_config = config_cls.from_pretrained(str(path))
            spec = read_processor_config(path, cls.family, cls._defaults(hf_config.image_size))
        else:
            tiny = config.tiny
            hf_config = config_cls(
                image_size=tiny.image_size, patch_size=tiny.patch_size, hidden_size=tiny.hidden_size,
                intermediate_size=tiny.intermediate_size, num_hidden_layers=tiny.num_layers,
                num_attention_heads=tiny.num_heads,
            )
            spec = cls._defaults(tiny.image_size)
        total = hf_config.num_hidden_layers
        feature = resolve_feature_layer(int(config.feature_layer), total)
        keep = feature if config.prune_layers else total
        hf_config.num_hidden_layers = keep
        hf_config._attn_implementation = config.attn_implementation
        if config.path and not context.meta:
            model = cls._load(model_cls, path, hf_config, dtype, keep, total)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(config.tiny.seed))
                model = model_cls(hf_config).to(dtype)
        tower = cls(model, bool(config.keep_cls), spec, bool(config.pad_to_square), total)
        tower.feature_layer = int(config.feature_layer)
        tower._select = None if feature == keep else feature
        if not context.meta:
            tower.quantize_weights(config.quantize)
        return tower

    def quantize_weights(self, mode: str) -> int:
        """``model.vision.quantize`` applied in place to the transformers tower's
        linear layers: at build time by ``from_config``, after a run's weights are
        loaded by ``load_stack``."""
        from mpm_framework.quantize import check_quantize, quantize_linear_int8

        if check_quantize(mode, "model.vision.quantize") == "none":
            return 0
        return quantize_linear_int8(self.model, field="model.vision.quantize")

    @classmethod
    def _check_model_type(cls, path: Path) -> None:
        """A CLIP directory given to ``siglip`` (or the reverse) is named, not
        left to fail as a wall of shape mismatches."""
        file = path / "config.json"
        if not file.is_file():
            raise ConfigError(f"{path} has no config.json: not a transformers checkpoint directory")
        model_type = json.loads(file.read_text(encoding="utf-8")).get("model_type", "")
        family = model_type.removesuffix("_vision_model")
        if family != cls.family:
            hint = f" Use vision={family}." if family in ("clip", "siglip") else ""
            raise ConfigError(f"{path} holds a '{model_type}' checkpoint, not {cls.family}.{hint}")

    @classmethod
    def _load(cls, model_cls, path: Path, hf_config, dtype, keep: int, total: int) -> nn.Module:
        model = cls._load_in_place(model_cls, path, hf_config, dtype)
        if model is not None:
            return model
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # its key table lists the pruned layers; we report below
        try:
            model, info = model_cls.from_pretrained(
                str(path), config=hf_config, dtype=dtype, output_loading_info=True,
            )
        except (OSError, RuntimeError, ValueError) as exc:
            raise MPMError(f"cannot load the {cls.family} tower from {path}: {str(exc).splitlines()[0]}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        missing = [k for k in info.get("missing_keys", []) if "head" not in k and "post_layernorm" not in k]
        if missing:
            raise MPMError(
                f"{path} lacks {len(missing)} weights of the {cls.family} vision tower "
                f"(e.g. {', '.join(sorted(missing)[:4])}): is it a {cls.family} checkpoint?"
            )
        mismatched = info.get("mismatched_keys", [])
        if mismatched:
            raise MPMError(f"{path}: weights with the wrong shape: {mismatched[:4]}")
        unused = [k for k in info.get("unexpected_keys", []) if not k.startswith(("text_model", "logit_"))]
        if unused:
            log.info("%s: %d tensors not used (layers past %d of %d, heads, text tower)",
                     path, len(unused), keep, total)
        return model

    @classmethod
    def _load_in_place(cls, model_cls, path: Path, hf_config, dtype) -> nn.Module | None:
        """The tower built with its parameters on the meta device and the
        checkpoint's tensors assigned to them (memory-mapped at the stored
        dtype, converted one at a time otherwise; pruned layers and the text
        tower are never read): the weights are in memory once. None when the
        names do not cover the tower (legacy layouts transformers renames while
        loading); ``from_pretrained`` then loads it and reports what is wrong."""
        from accelerate import init_empty_weights

        from mpm_framework.weight_files import load_files_into, materialize_rest, safetensors_files

        files = safetensors_files(path)
        if not files:
            return None
        with init_empty_weights(include_buffers=False):  # position ids are computed, not stored
            model = model_cls(hf_config)
        left = load_files_into(model, files, dtype, prefixes=("vision_model.",))  # a full CLIPModel/SiglipModel
        if any("head" not in k and "post_layernorm" not in k for k in left):
            return None
        materialize_rest(model)  # the unused head / final norm (removed by the tower)
        return model.to(dtype).eval()

    # -- contract -----------------------------------------------------------------
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = next(self.model.parameters()).dtype
        if self._select is None:
            states = self.model(pixel_values=pixel_values.to(dtype)).last_hidden_state
        else:
            states = self.model(pixel_values=pixel_values.to(dtype), output_hidden_states=True).hidden_states[self._select]
        if self.has_cls and not self.keep_cls:
            states = states[:, 1:]
        return states

    def trainable_groups(self) -> dict[str, list[str]]:
        names = [n for n, _ in self.named_parameters()]
        prefix = next(n for n in names if ".embeddings." in n or n.startswith("model.embeddings."))
        prefix = prefix[: prefix.index("embeddings.")]
        layers = sorted({int(n[len(prefix):].split(".")[2]) for n in names if n.startswith(prefix + "encoder.layers.")})
        groups = {
            "patch_embed": [prefix + "embeddings.patch_embedding."],
            "embeddings": [prefix + "embeddings.", prefix + "pre_layrnorm."],
            "encoder": [prefix + "encoder."],
            "all": [""],
        }
        if layers:
            groups["last_layer"] = [f"{prefix}encoder.layers.{layers[-1]}."]
        return groups

    def enable_gradient_checkpointing(self) -> None:
        self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def image_transform(self, train: bool = False):
        return ProcessorTransform(self.spec, self.pad_to_square)


class ClipEncoder(HFVisionTower):
    family, has_cls, config_class = "clip", True, ClipVisionConfig


class SiglipEncoder(HFVisionTower):
    family, has_cls, config_class = "siglip", False, SiglipVisionConfig

    @staticmethod
    def _model_classes():
        from transformers import SiglipVisionConfig as HFSiglipVisionConfig
        from transformers import SiglipVisionModel

        return HFSiglipVisionConfig, SiglipVisionModel

    @classmethod
    def _defaults(cls, image_size: int) -> ProcessorSpec:
        return siglip_defaults(image_size)
