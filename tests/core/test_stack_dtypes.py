"""A chat stack whose components run in other dtypes than the connector
(model.llm.dtype / model.vision.dtype = bf16, or quantize=int8) encodes images
and generates; bf16 stays close to fp32."""

import pytest
import torch

from mpm_framework.composition import compose


def _stack(*overrides):
    return compose(llm="llama", vision="clip", connector="mlp2x_gelu", overrides=list(overrides)).eval()


@pytest.mark.parametrize("overrides", [("model.llm.dtype=bf16", "model.vision.dtype=bf16"),
                                       ("model.llm.quantize=int8", "model.vision.quantize=int8")])
def test_mixed_dtype_stack_encodes_and_generates(tiny_components, overrides):
    fp32, other = _stack(), _stack(*overrides)
    image = torch.rand(1, 3, fp32.vision.image_size, fp32.vision.image_size)
    with torch.no_grad():
        want, got = fp32.encode_images(image), other.encode_images(image)
    assert got.shape == want.shape
    cos = torch.nn.functional.cosine_similarity(want.float().flatten(), got.float().flatten(), dim=0)
    assert cos > 0.98, cos
    answers = other.generate([image[0]], ["what is this?"], max_new_tokens=4)
    assert len(answers) == 1 and isinstance(answers[0], str)
