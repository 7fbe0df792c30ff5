"""CLIP and SigLIP vision towers for MPM, through transformers.

Importing the package is torch-free; the towers live in :mod:`mpm_vision_clip.encoder`."""

__version__ = "0.1.0"
