"""CPM-Bee as an MPM pivot LLM.

Torch-free at import: the registration (:mod:`.plugin`), the configs
(:mod:`.config`), the tokenizer (:mod:`.tokenizer`), the structured input
format (:mod:`.structured`) and the size/memory arithmetic (:mod:`.sizing`)
never import torch; the model code lives in :mod:`.model`, :mod:`.checkpoint`
and :mod:`.pivot`.
"""

__version__ = "0.1.0"
