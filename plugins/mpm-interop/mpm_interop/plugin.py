"""Registration only (torch-free): ``mpm --help`` never imports a converter."""

from mpm_framework.hookspecs import hookimpl

_P = "mpm_interop"


@hookimpl
def mpm_register_formats(register):
    register("viscpm", importer=f"{_P}.viscpm:import_viscpm",
             description="VisCPM-Chat (CPM-Bee + BEiT-3 queries) and VisCPM-Paint (CPM-Bee + SD-2.1 UNet) checkpoints")
    register("llava-hf", importer=f"{_P}.llava_hf:import_llava", exporter=f"{_P}.llava_export:export_llava",
             aliases=["llava"],
             description="transformers LlavaForConditionalGeneration folders (LLaVA-1.5 and descendants)")
