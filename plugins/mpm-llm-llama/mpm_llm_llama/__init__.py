"""MPM pivot LLM plugin for the LLaMA family and any Hugging Face causal LM.

Importing the package is cheap (no torch): the model lives in
:mod:`mpm_llm_llama.model`, the toy-world helpers in :mod:`mpm_llm_llama.toy`.
"""

__version__ = "0.1.0"
