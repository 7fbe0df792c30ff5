"""Registration only (torch-free): ``mpm plugins list`` never imports transformers."""

from mpm_framework.hookspecs import hookimpl

_P = "mpm_vision_clip"


@hookimpl
def mpm_register_vision_encoders(register):
    register(
        "clip", f"{_P}.encoder:ClipEncoder", config=f"{_P}.config:ClipVisionConfig",
        aliases=["clip-vit", "openai-clip"],
        description="CLIP vision tower (transformers), LLaVA-style feature layer, local checkpoints",
    )
    register(
        "siglip", f"{_P}.encoder:SiglipEncoder", config=f"{_P}.config:SiglipVisionConfig",
        description="SigLIP vision tower (transformers), feature layer selectable, local checkpoints",
    )
