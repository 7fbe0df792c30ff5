"""mpm_framework.weight_files: safetensors read as another dtype tensor by
tensor (in pieces smaller than a tensor too), memory-mapped at the stored one,
and assignment into a module built on the meta device."""

import pytest
import torch
from safetensors.torch import save_file

from mpm_framework import weight_files
from mpm_framework.weight_files import assign_weights, materialize_rest, meta_tensors, read_safetensors


@pytest.fixture
def file(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {"big": torch.randn(300, 70, generator=g), "half": torch.randn(5, generator=g).half(),
             "ids": torch.arange(7), "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3)}
    save_file(state, str(tmp_path / "w.safetensors"))
    return tmp_path / "w.safetensors", state


@pytest.mark.parametrize("chunk", [16 * 2**20, 1000])  # 1000 bytes: every tensor read in several pieces
def test_conversion_equals_torch_to(file, monkeypatch, chunk):
    path, state = file
    monkeypatch.setattr(weight_files, "_CHUNK", chunk)
    got = read_safetensors(path, torch.bfloat16)
    assert got.keys() == state.keys()
    for key, value in state.items():
        expected = value.to(torch.bfloat16) if value.is_floating_point() else value
        assert got[key].dtype == expected.dtype and torch.equal(got[key], expected), key
    assert read_safetensors(path, torch.float32, keys=["big", "nope"]).keys() == {"big"}


def test_stored_dtype_is_returned_unconverted(file):
    path, state = file
    got = read_safetensors(path)
    assert all(torch.equal(got[k], v) and got[k].dtype == v.dtype for k, v in state.items())


def test_assign_into_meta_module_and_materialize_the_rest():
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    weight = torch.randn(3, 4)
    assign_weights(model, {"0.weight": weight, "0.bias": torch.zeros(3)}, strict=False)
    assert model[0].weight.data_ptr() == weight.data_ptr()  # the tensor itself, no copy
    assert meta_tensors(model) == ["1.weight", "1.bias"]
    assert materialize_rest(model) == ["1.weight", "1.bias"]
    assert torch.equal(model[1].weight, torch.ones(3)) and not meta_tensors(model)
