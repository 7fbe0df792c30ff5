"""``mpm compose ... chat --max-gpu-memory SIZE``: layers placed across the GPU
and CPU memory with the planner's placement (accelerate).

No GPU is lent to this project's machines, so the GPU itself is never used
here: the placement is computed on a meta-device stack, the command's error
without CUDA is checked, and the dispatch path (offloaded weights on the meta
device, hooks moving inputs) runs with disk offload standing in for CPU memory
and the CPU standing in for the GPU. ``test_offloaded_chat_on_a_gpu`` runs
only where CUDA is present.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mpm_framework.cli.main import cli

pytest.importorskip("mpm_llm_llama")
pytest.importorskip("accelerate")

OVERRIDES = ["model.llm.tiny.hidden_size=32", "model.llm.tiny.intermediate_size=64", "model.llm.tiny.num_layers=4"]


def _image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))


def _device_of(name, device_map):
    from mpm_framework.planning.offload import _device_of

    return _device_of(name, device_map)


def _budget_for(stack, weight_bytes: int) -> int:
    """A --max-gpu-memory that leaves ``weight_bytes`` for weights (the rest of
    the budget is the KV cache and logits allowance)."""
    from mpm_framework.inference.offload import weight_budget

    big = 2**40
    return big - weight_budget(stack, big) + int(weight_bytes)


def _two_layers(stack) -> int:
    """Weight bytes for the embedding and two LLM layers, plus the largest module
    (accelerate keeps room for it on the GPU to run offloaded layers there)."""
    from accelerate.utils import compute_module_sizes

    sizes = compute_module_sizes(stack, dtype=torch.float32)
    largest = max(sizes[n] for n, m in stack.named_modules() if (n and not list(m.children()))
                  or type(m).__name__.endswith("Layer"))
    return sizes["llm.hf.model.embed_tokens"] + 2 * sizes["llm.hf.model.layers.0"] + largest


def _everything(stack) -> int:
    return 2 * sum(p.numel() * p.element_size() for p in stack.parameters())


def test_a_tiny_budget_puts_the_first_layers_on_the_gpu_and_the_rest_in_cpu_memory():
    from mpm_framework.composition import build_stack
    from mpm_framework.config.loading import resolve_config
    from mpm_framework.inference.offload import plan_placement, weight_budget

    stack = build_stack(resolve_config(llm="llama", vision="clip", overrides=OVERRIDES), meta=True)
    budget = _budget_for(stack, _two_layers(stack))
    placed = plan_placement(stack, budget)
    assert placed.gpu_bytes <= weight_budget(stack, budget)
    llm_layers = [_device_of(f"llm.hf.model.layers.{i}", placed.device_map) for i in range(4)]
    assert llm_layers[0] == 0 and llm_layers[-1] == "cpu"
    assert llm_layers == sorted(llm_layers, key=lambda d: d != 0)  # the first layers on GPU 0, then CPU
    assert _device_of("llm.hf.model.embed_tokens", placed.device_map) == 0
    vision_layers = [n for n, m in stack.vision.named_modules() if type(m).__name__ == "CLIPEncoderLayer"]
    assert vision_layers and all(_device_of(f"vision.{n}", placed.device_map) == "cpu" for n in vision_layers)
    assert 0 < placed.gpu_layers < placed.layers and placed.cpu_bytes > 0
    everything = plan_placement(stack, _budget_for(stack, _everything(stack)))
    assert everything.cpu_bytes == 0 and everything.gpu_layers == everything.layers


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_chat_without_cuda_says_it_needs_one(tiny_components):
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "chat",
                                      "--max-gpu-memory", "1GiB", "What is this?"])
    assert result.exit_code != 0
    assert "needs a CUDA device; on CPU weights are memory-mapped already" in result.output
    assert "Traceback" not in result.output
    bad = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "chat",
                                   "--max-gpu-memory", "lots", "What is this?"])
    assert bad.exit_code != 0 and "cannot read memory size 'lots'" in bad.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_serve_without_cuda_says_it_needs_one(tiny_components):
    pytest.importorskip("uvicorn")
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision", "serve",
                                      "--max-gpu-memory", "1GiB", "--port", "0"])
    assert result.exit_code != 0
    assert "needs a CUDA device; on CPU weights are memory-mapped already" in result.output


@pytest.fixture
def llama_stack():
    from mpm_framework import compose

    torch.manual_seed(0)
    return compose(llm="llama", vision="clip", overrides=OVERRIDES).eval()


def _conversation(stack):
    first, history = stack.chat(_image(), "What is this?", max_new_tokens=6)
    second, _ = stack.chat(None, "And the colour?", history=history, max_new_tokens=6)
    batch = stack.generate([_image(), _image()], ["What is this?", "Describe it."], max_new_tokens=5)
    return first, second, batch


@pytest.mark.parametrize("offloaded", ["planned", "everything"])
def test_offloaded_weights_answer_as_before(llama_stack, tmp_path, offloaded):
    """The dispatch path on the CPU: what the planner leaves off the GPU is offloaded
    (to disk here, its weights on the meta device between calls) and runs on the main
    device through accelerate's hooks; answers equal the undispatched stack's.
    "everything" offloads the input embedding too (the LLM's embed_tokens then
    leaves the ids where they are for the hook to move)."""
    from mpm_framework.inference.offload import dispatch, plan_placement

    before = _conversation(llama_stack)
    placed = plan_placement(llama_stack, _budget_for(llama_stack, _two_layers(llama_stack)))
    assert "cpu" in placed.device_map.values() and 0 in placed.device_map.values()
    stand_in = {name: "cpu" if dev == 0 and offloaded == "planned" else "disk"
                for name, dev in placed.device_map.items()}
    dispatch(llama_stack, stand_in, "cpu", offload_dir=tmp_path)
    assert llama_stack.placed_on == torch.device("cpu")
    offloaded = [n for n, p in llama_stack.named_parameters() if p.device.type == "meta"]
    assert any(n.startswith("vision.") for n in offloaded) and any(".layers." in n for n in offloaded)
    assert _conversation(llama_stack) == before


def test_offload_refuses_int8_layers(llama_stack, monkeypatch):
    from mpm_framework.errors import ConfigError
    from mpm_framework.inference import offload
    from mpm_framework.quantize import quantize_linear_int8

    monkeypatch.setattr(offload, "check_can_offload", lambda device=None: torch.device("cuda", 0))
    quantize_linear_int8(llama_stack.vision)
    with pytest.raises(ConfigError, match="run on the CPU only"):
        offload.offload_stack(llama_stack, 2**30)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA device: actual GPU dispatch is untested here (no GPU is lent to "
                           "this project's machines)")
def test_offloaded_chat_on_a_gpu(llama_stack):
    from mpm_framework.inference.offload import offload_stack

    before = _conversation(llama_stack)
    placed = offload_stack(llama_stack, _budget_for(llama_stack, _two_layers(llama_stack)))
    assert 0 < placed.gpu_layers < placed.layers
    assert llama_stack.placed_on == torch.device("cuda", 0)
    assert _conversation(llama_stack) == before
