"""Checkpoints in Microsoft's, torchscale's, VisCPM's and our own layout load
through the real code and reproduce the saved model's outputs exactly."""

import argparse

import pytest
import torch

from mpm_framework.errors import MPMError


@pytest.fixture
def source(make_beit3, perturbed):
    return perturbed(make_beit3(seed=0)).eval()


def _fresh(make_beit3, **kw):
    return make_beit3(seed=123, **kw).eval()


def _pixels():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def test_microsoft_layout_round_trip(source, make_beit3, tmp_path):
    from mpm_vision_beit3.checkpoint import save_microsoft

    path = save_microsoft(source, tmp_path / "beit3_tiny_patch8_32.pth")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"model"} and all(k.startswith("beit3.") for k in raw["model"])
    assert "beit3.encoder.layers.0.self_attn.inner_attn_ln.B.weight" in raw["model"]
    raw["model"]["head.weight"] = torch.zeros(3, 32)  # a fine-tuned task head rides along
    torch.save(raw, path)

    target = _fresh(make_beit3)
    report = target.load_checkpoint(str(path))
    assert report.format == "microsoft" and report.ok
    assert report.missing == [] and report.unexpected == []
    assert report.ignored == ["head.weight"]
    assert set(report.initialised) == {"query", "mapping.0.weight", "mapping.0.bias", "mapping.2.weight", "mapping.2.bias"}
    pixels = _pixels()
    torch.testing.assert_close(target.beit3(visual_tokens=pixels)["encoder_out"],
                               source.beit3(visual_tokens=pixels)["encoder_out"], atol=0, rtol=0)
    # queries re-initialised from the *loaded* text embedding (VisCPM builds them after loading)
    assert torch.equal(target.query[0], source.beit3.text_embed.weight[0])
    assert torch.equal(target.query[-1], source.beit3.text_embed.weight[2])


def test_viscpm_layout_round_trip_skips_the_llm(source, make_beit3, tmp_path):
    from mpm_vision_beit3.checkpoint import save_viscpm

    extra = {"llm.input_embedding.weight": torch.randn(10, 8), "vpm.mim_head.weight": torch.randn(4, 32)}
    path = save_viscpm(source, tmp_path / "pytorch_model.v1.bin", extra=extra)
    keys = set(torch.load(path, weights_only=True))
    assert {"query", "mapping.0.weight", "mapping.2.bias", "vpm.beit3.text_embed.weight"} <= keys

    target = _fresh(make_beit3)
    report = target.load_checkpoint(str(tmp_path))  # a directory with one checkpoint file
    assert report.format == "viscpm" and report.ok and report.initialised == []
    assert report.ignored == ["llm.input_embedding.weight", "vpm.mim_head.weight"]
    pixels = _pixels()
    torch.testing.assert_close(target(pixels), source(pixels), atol=0, rtol=0)


def test_mpm_safetensors_round_trip_through_from_config(source, make_beit3, tmp_path):
    from mpm_vision_beit3.checkpoint import save_safetensors

    path = save_safetensors(source, tmp_path / "beit3.safetensors")
    target = make_beit3(seed=9, path=str(path)).eval()
    assert target.load_report.format == "mpm" and target.load_report.ok
    torch.testing.assert_close(target(_pixels()), source(_pixels()), atol=0, rtol=0)


def test_torchscale_bare_state_dict(source, make_beit3, tmp_path):
    bare = {k[len("beit3."):]: v for k, v in source.state_dict().items() if k.startswith("beit3.")}
    torch.save(bare, tmp_path / "torchscale.pt")
    target = _fresh(make_beit3)
    report = target.load_checkpoint(str(tmp_path / "torchscale.pt"))
    assert report.format == "torchscale" and report.ok
    ids = torch.randint(0, 64, (2, 7))
    torch.testing.assert_close(target.beit3(textual_tokens=ids)["encoder_out"],
                               source.beit3(textual_tokens=ids)["encoder_out"], atol=0, rtol=0)


def test_unilm_args_namespace_is_allowed_but_other_objects_are_not(source, make_beit3, tmp_path):
    from mpm_vision_beit3.checkpoint import save_microsoft

    raw = torch.load(save_microsoft(source, tmp_path / "a.pth"), weights_only=True)
    raw["args"] = argparse.Namespace(model="beit3_tiny", lr=1e-4)
    torch.save(raw, tmp_path / "a.pth")
    assert _fresh(make_beit3).load_checkpoint(str(tmp_path / "a.pth")).ok

    raw["args"] = torch.nn.Linear(2, 2)  # an arbitrary pickled object: refused, never executed
    torch.save(raw, tmp_path / "b.pth")
    with pytest.raises(MPMError, match="weights-only"):
        _fresh(make_beit3).load_checkpoint(str(tmp_path / "b.pth"))


def test_missing_keys_are_reported_and_strict_refuses(source, make_beit3, tmp_path):
    from mpm_vision_beit3.checkpoint import save_microsoft

    raw = torch.load(save_microsoft(source, tmp_path / "m.pth"), weights_only=True)
    del raw["model"]["beit3.encoder.layers.1.ffn.B.fc2.weight"]
    raw["model"]["beit3.encoder.relative_position.weight"] = torch.zeros(2)
    torch.save(raw, tmp_path / "m.pth")
    with pytest.raises(MPMError, match=r"missing.*layers\.1\.ffn\.B\.fc2\.weight"):
        _fresh(make_beit3).load_checkpoint(str(tmp_path / "m.pth"))
    report = _fresh(make_beit3).load_checkpoint(str(tmp_path / "m.pth"), strict=False)
    assert report.missing == ["beit3.encoder.layers.1.ffn.B.fc2.weight"]
    assert report.unexpected == ["beit3.encoder.relative_position.weight"]
    assert "missing" in report.summary() and "unexpected" in report.summary()


def test_wrong_preset_is_named(source, make_beit3, tmp_path):
    from mpm_vision_beit3.checkpoint import save_microsoft

    save_microsoft(source, tmp_path / "t.pth")
    with pytest.raises(MPMError, match=r"width 32 but the model has width 64\. Use preset: tiny"):
        make_beit3(hidden_size=64, path=str(tmp_path / "t.pth"))
    with pytest.raises(MPMError, match="2 BEiT-3 layers but the model has 3"):
        make_beit3(num_layers=3, path=str(tmp_path / "t.pth"))


def test_vision_positions_are_interpolated_to_a_new_image_size(source, make_beit3, tmp_path):
    from mpm_vision_beit3.checkpoint import save_microsoft

    save_microsoft(source, tmp_path / "t.pth")
    big = make_beit3(image_size=48, path=str(tmp_path / "t.pth"))
    assert big.load_report.interpolated == ["beit3.encoder.embed_positions.A.weight"]
    table = big.beit3.encoder.embed_positions.A.weight
    assert table.shape == (2 + 1 + 36, 32)
    torch.testing.assert_close(table[:3], source.beit3.encoder.embed_positions.A.weight[:3])
    assert big(torch.randn(1, 3, 48, 48)).shape == (1, 6, 40)


def test_not_a_beit3_checkpoint(tmp_path, make_beit3):
    torch.save({"model.embed_tokens.weight": torch.zeros(2, 2)}, tmp_path / "llama.bin")
    with pytest.raises(MPMError, match="not a BEiT-3 checkpoint"):
        _fresh(make_beit3).load_checkpoint(str(tmp_path / "llama.bin"))
    from mpm_framework.errors import ConfigError

    with pytest.raises(ConfigError, match="not found"):
        _fresh(make_beit3).load_checkpoint(str(tmp_path / "nope.pth"))
