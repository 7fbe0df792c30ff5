"""BEiT-3 (multiway transformer) vision encoder for MPM, with VisCPM's query bridge.

Importing the package is torch-free; the model lives in
:mod:`mpm_vision_beit3.encoder` and :mod:`mpm_vision_beit3.modeling`."""

__version__ = "0.1.0"
