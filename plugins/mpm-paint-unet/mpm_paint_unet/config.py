"""Config of the ``unet`` image decoder (torch-free: ``mpm plugins list`` reads it).

Two ways to build the decoder:

* ``path``: a Stable Diffusion-layout directory (``unet/``, optional ``vae/``,
  ``scheduler/``; ``adapter/`` once MPM has trained one). With a ``vae/`` the
  decoder works in latent space, without one in pixel space. The noise schedule
  then comes from ``scheduler/scheduler_config.json``; ``scheduler`` only picks
  the sampler class.
* no ``path``: a small random UNet described by the fields below (tests, the toy
  world, trying a recipe on a laptop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mpm_framework.config.choices import Dtype

TRAINABLE_CHOICES = ("adapter", "adapter+cross_attention", "all")
SCHEDULER_CHOICES = ("ddpm", "ddim", "euler", "euler_ancestral", "dpmsolver")
SPACE_CHOICES = ("pixel", "latent")
PREDICTION_CHOICES = ("epsilon", "v_prediction", "sample")


@dataclass
class UNetDecoderConfig:
    name: str = "unet"
    # -- a real checkpoint ------------------------------------------------------
    path: str | None = None
    variant: str | None = None  # weight-file variant, e.g. "fp16" (diffusion_pytorch_model.fp16.safetensors)
    # -- a random model (used when path is None) ----------------------------------
    space: str = "pixel"  # pixel | latent (latent adds a small random AutoencoderKL)
    image_size: int = 32  # pixels
    block_out_channels: list[int] = field(default_factory=lambda: [32, 64])
    # "cross" puts cross-attention in a resolution level, "plain" leaves it out
    # (attention at the highest resolution dominates the cost of small models).
    block_kinds: list[str] = field(default_factory=lambda: ["cross", "cross"])
    layers_per_block: int = 1
    attention_head_dim: int = 8
    cross_attention_dim: int = 64
    norm_num_groups: int = 8
    # Also add an attention-pooled summary of the adapted prompt states
    # (pool_heads vectors) to the timestep embedding (SDXL's pooled-text
    # pathway through diffusers' "projection" class embedding). Not in
    # VisCPM-Paint: a from-scratch toy UNet follows prompts far sooner with it.
    # A checkpoint's UNet config decides by itself.
    pooled_conditioning: bool = False
    pool_heads: int = 4
    latent_channels: int = 4
    vae_block_out_channels: list[int] = field(default_factory=lambda: [32, 64])
    seed: int = 0
    # -- noise schedule (random models; a checkpoint brings its own) ---------------
    num_train_timesteps: int = 1000
    beta_schedule: str | None = None  # None: scaled_linear in latent space (SD), linear in pixel space (DDPM)
    beta_start: float | None = None
    beta_end: float | None = None
    prediction_type: str = "epsilon"  # epsilon | v_prediction | sample
    # -- sampling ------------------------------------------------------------------
    scheduler: str = "ddim"  # ddpm | ddim | euler | euler_ancestral | dpmsolver
    guidance_scale: float = 7.5
    num_inference_steps: int = 50
    # -- adapter and training ------------------------------------------------------
    adapter_dropout: float = 0.1
    # Centre and scale each LLM feature by running statistics before the
    # adapter's Linear (see adapter.py). Off as in VisCPM-Paint; small pivots need it.
    adapter_standardize: bool = False
    # Share of training captions replaced by the empty caption (the paint stack
    # reads it): guidance needs the unconditional model learnt alongside.
    caption_dropout: float = 0.1
    trainable: str = "adapter+cross_attention"  # adapter | adapter+cross_attention | all
    dtype: Dtype = "fp32"  # fp32 | bf16 | fp16


def trainable_groups_for(choice: str) -> list[str]:
    """The decoder parameter groups a ``trainable`` choice unfreezes. ``all``
    means the adapter and the whole UNet; the VAE stays frozen as in Stable
    Diffusion training (name ``decoder.vae`` explicitly to train it)."""
    return {
        "adapter": ["adapter"],
        "adapter+cross_attention": ["adapter", "cross_attention"],
        "all": ["adapter", "unet"],
    }[choice]
