"""Registers the ``cpm-bee`` pivot LLM and the ``mpm cpm-bee`` commands (torch-free)."""

from mpm_framework.hookspecs import hookimpl

_P = "mpm_llm_cpm_bee"


@hookimpl
def mpm_register_llms(register):
    register("cpm-bee", f"{_P}.pivot:CPMBeeLLM", config=f"{_P}.config:CPMBeeLLMConfig",
             aliases=["cpm_bee", "cpmbee"],
             description="CPM-Bee 1B/2B/5B/10B (VisCPM's bilingual LLM), official checkpoints")


@hookimpl
def mpm_register_commands(cli):
    from .cli import cpm_bee

    cli.add_command(cpm_bee)
