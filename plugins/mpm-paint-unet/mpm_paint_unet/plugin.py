"""Registers the ``unet`` image decoder (torch-free)."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_image_decoders(register):
    register(
        "unet",
        "mpm_paint_unet.decoder:UNetDecoder",
        config="mpm_paint_unet.config:UNetDecoderConfig",
        aliases=["sd-unet", "stable-diffusion"],
        description="diffusers UNet (latent with a VAE, or pixel space) behind an LLM adapter (VisCPM-Paint)",
    )
