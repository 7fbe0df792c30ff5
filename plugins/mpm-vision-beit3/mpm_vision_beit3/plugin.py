"""Registration only (torch-free): ``mpm plugins list`` never imports the model."""

from mpm_framework.hookspecs import hookimpl

_P = "mpm_vision_beit3"


@hookimpl
def mpm_register_vision_encoders(register):
    register(
        "beit3", f"{_P}.encoder:Beit3Encoder", config=f"{_P}.config:Beit3Config",
        aliases=["beit-3", "viscpm-beit3"], default_connector="identity",
        description="BEiT-3 multiway encoder + learned queries (VisCPM bridge); Microsoft/VisCPM checkpoints",
    )
