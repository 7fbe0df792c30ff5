"""Registration only: no torch here, so `mpm plugins list` stays fast."""

from dataclasses import dataclass

from mpm_framework import hookimpl


@dataclass
class ConvEncoderConfig:
    name: str = "conv-example"
    image_size: int = 32
    width: int = 64


@hookimpl
def mpm_register_vision_encoders(register):
    register("conv-example", "mpm_vision_example.encoder:ConvEncoder",
             config="mpm_vision_example.plugin:ConvEncoderConfig", aliases=["conv"])
