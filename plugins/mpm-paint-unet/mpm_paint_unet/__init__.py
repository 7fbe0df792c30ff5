"""``mpm-paint-unet``: a diffusers UNet image decoder for MPM paint stacks.

Import the torch parts from their modules (``mpm_paint_unet.decoder``); this
package root stays light so plugin discovery never imports torch."""

__version__ = "0.1.0"
