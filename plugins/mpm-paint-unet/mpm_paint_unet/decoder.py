"""The ``unet`` image decoder: LLM adapter -> diffusers UNet (-> VAE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mpm_framework.config.choices import torch_dtype
from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.decoder import ImageDecoder
from mpm_framework.errors import ConfigError, did_you_mean

from .adapter import LLMAdapter, PromptPool
from .config import (
    PREDICTION_CHOICES,
    SPACE_CHOICES,
    TRAINABLE_CHOICES,
    UNetDecoderConfig,
    trainable_groups_for,
)
from .schedulers import build_noise_scheduler, build_sampler, check_scheduler_name, random_schedule_config


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(
            f"model.decoder.{key}={value!r} is not valid.{did_you_mean(value, choices)} "
            f"Choose one of: {', '.join(choices)}"
        )


def _validate(cfg: UNetDecoderConfig) -> None:
    _choice("space", cfg.space, SPACE_CHOICES)
    _choice("trainable", cfg.trainable, TRAINABLE_CHOICES)
    _choice("prediction_type", cfg.prediction_type, PREDICTION_CHOICES)
    torch_dtype(cfg.dtype, "model.decoder.dtype")  # a name outside Dtype fails here
    check_scheduler_name(cfg.scheduler)
    if not 0.0 <= cfg.adapter_dropout < 1.0:
        raise ConfigError(f"model.decoder.adapter_dropout must be in [0, 1), got {cfg.adapter_dropout}")
    if cfg.pool_heads < 1:
        raise ConfigError(f"model.decoder.pool_heads must be at least 1, got {cfg.pool_heads}")
    if not 0.0 <= cfg.caption_dropout < 1.0:
        raise ConfigError(f"model.decoder.caption_dropout must be in [0, 1), got {cfg.caption_dropout}")


def _random_unet(cfg: UNetDecoderConfig):
    from diffusers import UNet2DConditionModel

    channels, kinds = list(cfg.block_out_channels), list(cfg.block_kinds)
    if len(kinds) != len(channels):
        raise ConfigError(
            f"model.decoder.block_kinds has {len(kinds)} entries but block_out_channels has "
            f"{len(channels)}: give one kind ('cross' or 'plain') per resolution level"
        )
    for kind in kinds:
        _choice("block_kinds[]", kind, ("cross", "plain"))
    for width in channels:
        if width % cfg.norm_num_groups or width % cfg.attention_head_dim:
            raise ConfigError(
                f"block width {width} must be divisible by norm_num_groups={cfg.norm_num_groups} "
                f"and attention_head_dim={cfg.attention_head_dim}"
            )
    latent = cfg.space == "latent"
    scale = 2 ** (len(cfg.vae_block_out_channels) - 1) if latent else 1
    sample_size = cfg.image_size // scale
    if cfg.image_size % scale or sample_size % 2 ** (len(channels) - 1):
        raise ConfigError(
            f"model.decoder.image_size={cfg.image_size} must be divisible by "
            f"{scale * 2 ** (len(channels) - 1)} for {len(channels)} UNet levels"
            + (f" behind a VAE that downsamples {scale}x" if latent else "")
        )
    in_channels = cfg.latent_channels if latent else 3
    pooled = {"class_embed_type": "projection",
              "projection_class_embeddings_input_dim": cfg.cross_attention_dim * cfg.pool_heads}
    return UNet2DConditionModel(
        **(pooled if cfg.pooled_conditioning else {}),
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=in_channels,
        down_block_types=tuple("CrossAttnDownBlock2D" if k == "cross" else "DownBlock2D" for k in kinds),
        up_block_types=tuple("CrossAttnUpBlock2D" if k == "cross" else "UpBlock2D" for k in reversed(kinds)),
        block_out_channels=tuple(channels),
        layers_per_block=cfg.layers_per_block,
        cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=cfg.norm_num_groups,
    )


def _random_vae(cfg: UNetDecoderConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.vae_block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.vae_block_out_channels),
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        sample_size=cfg.image_size,
    )


def _pad(states: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    extra = length - states.shape[1]
    if extra == 0:
        return states, mask
    return F.pad(states, (0, 0, 0, extra)), F.pad(mask, (0, extra))


class UNetDecoder(ImageDecoder):
    """Text-to-image decoder conditioned on pivot-LLM hidden states.

    ``unet`` and (in latent space) ``vae`` are diffusers modules, so any
    Stable Diffusion-layout checkpoint loads; ``adapter`` is VisCPM-Paint's
    Linear (no bias) -> dropout -> LayerNorm from the LLM width to the UNet's
    cross-attention width."""

    def __init__(
        self,
        unet: nn.Module,
        vae: nn.Module | None,
        adapter: LLMAdapter,
        schedule: dict[str, Any],
        sampler: str = "ddim",
        trainable: str = "adapter+cross_attention",
        guidance_scale: float = 7.5,
        num_inference_steps: int = 50,
    ) -> None:
        super().__init__()
        self.unet, self.vae, self.adapter = unet, vae, adapter
        if vae is not None:
            vae.requires_grad_(False)
        self.schedule = dict(schedule)
        self.noise_scheduler = build_noise_scheduler(self.schedule)
        self.sampler_name = sampler
        self.prediction_type = self.schedule.get("prediction_type", "epsilon")
        self.trainable = trainable
        self.guidance_scale, self.num_inference_steps = guidance_scale, num_inference_steps
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
        self.pooled_conditioning = unet.config.class_embed_type == "projection"
        self.pool: PromptPool | None = None
        if self.pooled_conditioning:
            width = int(unet.config.projection_class_embeddings_input_dim)
            if width % adapter.cross_attention_dim:
                raise ConfigError(
                    f"the UNet's pooled-prompt input ({width}) is not a multiple of its cross-attention "
                    f"width ({adapter.cross_attention_dim})"
                )
            self.pool = PromptPool(adapter.cross_attention_dim, width // adapter.cross_attention_dim)
        self.image_size = int(unet.config.sample_size) * self.vae_scale_factor

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_config(cls, config: UNetDecoderConfig, context: BuildContext) -> UNetDecoder:
        _validate(config)
        if context.llm_hidden_size is None:
            raise ConfigError("the unet decoder needs the pivot LLM's hidden size (build it in a paint stack)")
        # Seeded construction that leaves the caller's RNG stream alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return cls._build(config, context)

    @classmethod
    def _build(cls, config: UNetDecoderConfig, context: BuildContext) -> UNetDecoder:
        dtype = torch_dtype(config.dtype, "model.decoder.dtype")
        adapter_state = None
        standardize = bool(config.adapter_standardize)
        if config.path:
            from .layout import load_layout

            loaded = load_layout(config.path, config.variant, dtype, meta=context.meta)
            unet, vae = loaded.unet, loaded.vae
            if config.pooled_conditioning and unet.config.class_embed_type != "projection":
                raise ConfigError(
                    f"model.decoder.pooled_conditioning=true but the UNet in {config.path} has no projection "
                    "class embedding to take the pooled prompt; leave it false for Stable Diffusion checkpoints"
                )
            schedule = loaded.schedule or random_schedule_config(
                config, "latent" if vae is not None else "pixel"
            )
            if loaded.adapter_config is not None:
                if loaded.adapter_config["llm_dim"] != context.llm_hidden_size:
                    raise ConfigError(
                        f"the adapter in {config.path}/adapter maps a {loaded.adapter_config['llm_dim']}-wide "
                        f"LLM but this pivot LLM is {context.llm_hidden_size} wide: compose it with the LLM "
                        "it was trained with"
                    )
                adapter_state = loaded.adapter_state
                standardize = bool(loaded.adapter_config.get("standardize", False))
        else:
            unet = _random_unet(config)
            vae = _random_vae(config) if config.space == "latent" else None
            schedule = random_schedule_config(config)
        cross_dim = unet.config.cross_attention_dim
        if not isinstance(cross_dim, int):
            raise ConfigError(f"UNets with per-block cross_attention_dim ({cross_dim}) are not supported")
        adapter = LLMAdapter(context.llm_hidden_size, cross_dim, config.adapter_dropout, standardize=standardize)
        decoder = cls(
            unet, vae, adapter, schedule,
            sampler=config.scheduler, trainable=config.trainable,
            guidance_scale=config.guidance_scale, num_inference_steps=config.num_inference_steps,
        )
        if adapter_state is not None:
            pool_state = {k[5:]: v for k, v in adapter_state.items() if k.startswith("pool.")}
            adapter.load_state_dict({k: v for k, v in adapter_state.items() if not k.startswith("pool.")})
            if decoder.pool is not None and pool_state:
                decoder.pool.load_state_dict(pool_state)
        return decoder.to(dtype)

    def save_pretrained(self, path: str) -> None:
        from .layout import save_layout

        save_layout(self, path)

    # -- parameter groups ------------------------------------------------------
    def cross_attention_prefixes(self) -> list[str]:
        """Every cross-attention block of the UNet (diffusers names them ``attn2``):
        the 'key bridging parameters' VisCPM-Paint unfreezes with the adapter."""
        return [f"unet.{name}." for name, _ in self.unet.named_modules() if name.endswith("attn2")]

    def trainable_groups(self) -> dict[str, list[str]]:
        groups = {
            "adapter": ["adapter.", "pool."],
            "cross_attention": self.cross_attention_prefixes(),
            "unet": ["unet."],
        }
        if self.vae is not None:
            groups["vae"] = ["vae."]
        return groups

    def default_trainable(self) -> list[str]:
        """``decoder.<group>`` specs of the configured ``trainable`` choice."""
        return [f"decoder.{g}" for g in trainable_groups_for(self.trainable)]

    def enable_gradient_checkpointing(self) -> None:
        self.unet.enable_gradient_checkpointing()

    # -- image <-> model space -------------------------------------------------
    @property
    def model_dtype(self) -> torch.dtype:
        return self.unet.dtype

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> what the UNet denoises (latents or pixels)."""
        images = images.to(self.unet.device, self.model_dtype)
        if self.vae is None:
            return images
        with torch.set_grad_enabled(torch.is_grad_enabled() and any(p.requires_grad for p in self.vae.parameters())):
            latents = self.vae.encode(images).latent_dist.sample()
        shift = self.vae.config.shift_factor or 0.0
        return (latents - shift) * self.vae.config.scaling_factor

    def from_model_space(self, x: torch.Tensor) -> torch.Tensor:
        if self.vae is not None:
            x = x / self.vae.config.scaling_factor + (self.vae.config.shift_factor or 0.0)
            x = self.vae.decode(x).sample
        return x.float().clamp(-1.0, 1.0)

    def model_space_shape(self, batch_size: int) -> tuple[int, int, int, int]:
        size = int(self.unet.config.sample_size)
        return batch_size, int(self.unet.config.in_channels), size, size

    # -- denoising ---------------------------------------------------------------
    def condition(self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """LLM hidden states -> cross-attention states (through the adapter)."""
        hidden_states = hidden_states.to(self.unet.device, self.adapter.proj.weight.dtype)
        return self.adapter(hidden_states, None if mask is None else mask.to(hidden_states.device))

    def denoise(
        self, x: torch.Tensor, timesteps: torch.Tensor, states: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """One UNet call on adapted states; padded condition tokens are masked out
        (of the cross-attention and of the pooled condition alike)."""
        mask = mask.to(x.device)
        states = states.to(x.dtype)
        pooled = self.pool(states, mask) if self.pool is not None else None
        return self.unet(
            x, timesteps, encoder_hidden_states=states, encoder_attention_mask=mask, class_labels=pooled
        ).sample

    def guided_prediction(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int,
        cond_states: torch.Tensor,
        cond_mask: torch.Tensor,
        uncond_states: torch.Tensor | None = None,
        uncond_mask: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        """Classifier-free guidance on adapted states: ``u + s * (c - u)``.

        The unconditional and conditional halves run as one batch; the shorter
        condition is padded and masked, so padding never changes a prediction.
        ``uncond_states`` may hold one row, shared by the whole batch."""
        if uncond_states is None:
            return self.denoise(x, t, cond_states, cond_mask)
        batch = x.shape[0]
        if uncond_states.shape[0] == 1 and batch > 1:
            uncond_states = uncond_states.expand(batch, -1, -1)
            uncond_mask = uncond_mask.expand(batch, -1)
        length = max(cond_states.shape[1], uncond_states.shape[1])
        c_states, c_mask = _pad(cond_states, cond_mask, length)
        u_states, u_mask = _pad(uncond_states, uncond_mask, length)
        out = self.denoise(
            torch.cat([x, x]), t, torch.cat([u_states, c_states]), torch.cat([u_mask, c_mask])
        )
        uncond_out, cond_out = out.chunk(2)
        return uncond_out + guidance_scale * (cond_out - uncond_out)

    # -- the contract ------------------------------------------------------------
    def training_loss(
        self,
        images: torch.Tensor,
        cond: torch.Tensor,
        cond_mask: torch.Tensor,
        noise: torch.Tensor | None = None,
        timesteps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MSE between the UNet's prediction and its target (noise for epsilon
        models, velocity for v-prediction) at random timesteps. ``noise`` and
        ``timesteps`` can be fixed to measure the loss on a fixed batch."""
        x0 = self.to_model_space(images)
        if noise is None:
            noise = torch.randn_like(x0)
        noise = noise.to(x0)
        if timesteps is None:
            timesteps = torch.randint(
                0, self.noise_scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device
            )
        timesteps = timesteps.to(x0.device).long()
        noisy = self.noise_scheduler.add_noise(x0, noise, timesteps)
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(x0, noise, timesteps)
        else:
            target = x0
        prediction = self.denoise(noisy, timesteps, self.condition(cond, cond_mask), cond_mask)
        return F.mse_loss(prediction.float(), target.float())

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        cond_mask: torch.Tensor,
        uncond: torch.Tensor | None,
        uncond_mask: torch.Tensor | None,
        guidance_scale: float | None = None,
        num_steps: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        sampler: str | None = None,
        progress: bool | Callable[[int, int], None] = False,
    ) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1].

        Guidance 1.0 is the plain conditional model, so the unconditional half is
        skipped there. ``generator`` (one, or one per row) seeds the initial noise
        and every stochastic sampler step; CPU generators give the same noise
        on any device."""
        from diffusers.utils.torch_utils import randn_tensor

        guidance_scale = self.guidance_scale if guidance_scale is None else guidance_scale
        num_steps = num_steps or self.num_inference_steps
        was_training = self.training
        self.eval()
        try:
            scheduler = build_sampler(sampler or self.sampler_name, self.schedule, clip_sample=self.vae is None)
            scheduler.set_timesteps(num_steps, device=self.unet.device)
            use_guidance = uncond is not None and guidance_scale != 1.0
            states = self.condition(cond, cond_mask)
            u_states = self.condition(uncond, uncond_mask) if use_guidance else None
            x = randn_tensor(
                self.model_space_shape(cond.shape[0]), generator=generator,
                device=self.unet.device, dtype=self.model_dtype,
            )
            x = x * scheduler.init_noise_sigma
            steps = scheduler.timesteps
            bar = None
            if progress is True:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(steps), desc="denoising", unit="step", leave=False)
            for i, t in enumerate(steps):
                model_in = scheduler.scale_model_input(x, t)
                out = self.guided_prediction(
                    model_in, t, states, cond_mask, u_states, uncond_mask if use_guidance else None,
                    guidance_scale,
                )
                x = scheduler.step(out, t, x, generator=generator).prev_sample
                if bar is not None:
                    bar.update()
                elif callable(progress):
                    progress(i + 1, len(steps))
            if bar is not None:
                bar.close()
            return self.from_model_space(x)
        finally:
            self.train(was_training)

