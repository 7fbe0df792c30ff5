"""UNet and VAE are loaded in place (parameters built on the meta device, the
safetensors assigned): the same weights as diffusers' from_pretrained."""

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd-in-place")
    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=8, norm_num_groups=8,
    ).save_pretrained(root / "unet")
    AutoencoderKL(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
                  sample_size=16).save_pretrained(root / "vae")
    return root


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("cls,sub", [(UNet2DConditionModel, "unet"), (AutoencoderKL, "vae")])
def test_in_place_load_equals_from_pretrained(layout, cls, sub, dtype):
    from mpm_paint_unet.layout import _load_in_place

    ours = _load_in_place(cls, layout, sub, None, dtype)
    assert ours is not None, "the in-place path fell back to from_pretrained"
    ref = cls.from_pretrained(layout, subfolder=sub, torch_dtype=dtype)
    mine, theirs = ours.state_dict(), ref.state_dict()
    assert mine.keys() == theirs.keys()
    for key in theirs:
        assert mine[key].dtype == theirs[key].dtype, key
        assert torch.equal(mine[key], theirs[key]), key
    assert not ours.training


def test_a_layout_that_lacks_weights_falls_back_to_diffusers(layout, tmp_path):
    """Names that do not cover the model go to from_pretrained (not half-loaded)."""
    import shutil

    from mpm_paint_unet.layout import _load_in_place
    from safetensors.torch import load_file, save_file

    shutil.copytree(layout / "unet", tmp_path / "unet")
    file = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(file))
    state.pop("conv_out.bias")
    save_file(state, str(file))
    assert _load_in_place(UNet2DConditionModel, tmp_path, "unet", None, torch.float32) is None
