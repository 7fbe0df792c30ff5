"""Built from a checkpoint, the encoder's parameters start on the meta device
and receive the file's tensors (assign): the weights are in memory once. What
the file lacks (the bridge of a Microsoft checkpoint) is still initialised,
deterministically, and a dtype is applied while reading."""

import torch


def _pixels():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def test_microsoft_checkpoint_through_from_config_initialises_the_bridge(make_beit3, perturbed, tmp_path):
    from mpm_vision_beit3.checkpoint import save_microsoft

    source = perturbed(make_beit3(seed=0)).eval()
    path = save_microsoft(source, tmp_path / "beit3.pth")
    first, second = make_beit3(seed=4, path=str(path)).eval(), make_beit3(seed=4, path=str(path)).eval()
    assert not [n for n, t in (*first.named_parameters(), *first.named_buffers()) if t.is_meta]
    assert set(first.load_report.initialised) >= {"query", "mapping.0.weight", "mapping.2.bias"}
    pixels = _pixels()
    torch.testing.assert_close(first.beit3(visual_tokens=pixels)["encoder_out"],
                               source.beit3(visual_tokens=pixels)["encoder_out"], atol=0, rtol=0)
    assert torch.equal(first.query[0], source.beit3.text_embed.weight[0])  # from the loaded embedding
    for name, value in first.state_dict().items():  # seeded: the same build twice is the same model
        assert torch.isfinite(value.float()).all(), name
        assert torch.equal(value, second.state_dict()[name]), name
    assert first.mapping[0].weight.abs().sum() > 0 and first.mapping[0].weight.std() < 1


def test_safetensors_read_as_bf16_equal_the_converted_source(make_beit3, perturbed, tmp_path):
    from mpm_vision_beit3.checkpoint import save_safetensors

    source = perturbed(make_beit3(seed=0)).eval()
    path = save_safetensors(source, tmp_path / "beit3.safetensors")
    loaded = make_beit3(path=str(path), dtype="bf16").eval()
    assert loaded.load_report.ok
    expected = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in source.state_dict().items()}
    mine = loaded.state_dict()
    assert mine.keys() == expected.keys()
    for key, value in expected.items():
        assert mine[key].dtype == value.dtype and torch.equal(mine[key], value), key
    torch.testing.assert_close(loaded(_pixels().bfloat16()).float(), source.bfloat16()(_pixels().bfloat16()).float(),
                               atol=0, rtol=0)


def test_not_strict_missing_backbone_weights_are_materialised(make_beit3, perturbed, tmp_path):
    from mpm_vision_beit3.checkpoint import save_safetensors
    from safetensors.torch import load_file, save_file

    path = save_safetensors(perturbed(make_beit3(seed=0)), tmp_path / "beit3.safetensors")
    state = load_file(str(path))
    state.pop("beit3.encoder.layers.0.ffn.A.fc1.weight")
    save_file(state, str(path))
    model = make_beit3(path=str(path), strict=False)
    assert model.load_report.missing == ["beit3.encoder.layers.0.ffn.A.fc1.weight"]
    assert not [n for n, p in model.named_parameters() if p.is_meta]
    assert torch.isfinite(model(_pixels())).all()


def test_int8_encoder_matches_fp32_within_tolerance(make_beit3, perturbed, tmp_path):
    """model.vision.quantize=int8 (both experts and the mapping): output
    cosine >= 0.99 with fp32 (mean over query tokens, tiny model)."""
    from mpm_vision_beit3.checkpoint import save_safetensors

    from mpm_framework.quantize import is_quantized

    path = save_safetensors(perturbed(make_beit3(seed=0)), tmp_path / "beit3.safetensors")
    fp32, int8 = make_beit3(path=str(path)).eval(), make_beit3(path=str(path), quantize="int8").eval()
    assert is_quantized(int8) and not is_quantized(fp32)
    with torch.no_grad():
        cos = torch.nn.functional.cosine_similarity(fp32(_pixels()), int8(_pixels()), dim=-1)
    print("beit3 int8 output cosine: mean", cos.mean().item(), "min", cos.min().item())
    assert cos.mean() >= 0.99
