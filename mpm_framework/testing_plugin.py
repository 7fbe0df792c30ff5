"""Registers the tiny test components (``tiny-llm``, ``tiny-vision``).

Not loaded by default: tests use the ``tiny_components`` fixture in-process, and
subprocesses set ``MPM_PLUGINS=mpm_framework.testing_plugin``."""

from mpm_framework.hookspecs import hookimpl

_T = "mpm_framework.testing"


@hookimpl
def mpm_register_llms(register):
    register("tiny-llm", f"{_T}:TinyLLM", config=f"{_T}:TinyLLMConfig", aliases=["tiny"],
             description="byte-level test LLM")


@hookimpl
def mpm_register_vision_encoders(register):
    register("tiny-vision", f"{_T}:TinyVision", config=f"{_T}:TinyVisionConfig",
             description="patch test encoder")
