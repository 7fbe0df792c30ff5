"""A complete vision encoder plugin in twenty lines."""

from torch import nn

from mpm_framework.contracts.base import BuildContext
from mpm_framework.contracts.vision import VisionEncoder

from .plugin import ConvEncoderConfig


class ConvEncoder(VisionEncoder):
    image_mean = image_std = (0.5, 0.5, 0.5)

    def __init__(self, image_size: int, width: int):
        super().__init__()
        self.image_size, self.hidden_size = image_size, width
        self.num_output_tokens = (image_size // 8) ** 2
        self.net = nn.Sequential(nn.Conv2d(3, width, 4, 4), nn.GELU(), nn.Conv2d(width, width, 2, 2))

    @classmethod
    def from_config(cls, config: ConvEncoderConfig, context: BuildContext) -> "ConvEncoder":
        # config: the ConvEncoderConfig instance, validated by the core
        return cls(config.image_size, config.width)

    def trainable_groups(self):
        return {"stem": ["net.0."]}

    def forward(self, pixel_values):
        return self.net(pixel_values).flatten(2).transpose(1, 2)  # (B, N, width)
