"""Checkpoint formats for MPM: VisCPM and transformers Llava in, Llava out.

Importing the package is torch-free; the converters live in
:mod:`mpm_interop.viscpm` and :mod:`mpm_interop.llava_hf`."""

__version__ = "0.1.0"
