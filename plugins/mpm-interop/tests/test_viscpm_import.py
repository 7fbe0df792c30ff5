"""``mpm import viscpm``: synthetic VisCPM-Chat and VisCPM-Paint checkpoints in
VisCPM's key layout and file format (a flat ``torch.save`` dict, read by
VisCPM with ``torch.load`` + ``load_state_dict``), tiny sizes; the run folder
loads with ``load_run`` / ``mpm compose chat --checkpoint`` and computes what
the original modules compute."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mpm_framework.cli.main import cli


def _perturb(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return module


def tiny_llm(vocab_file):
    from mpm_llm_cpm_bee.testing import tiny_cpm_bee

    return _perturb(tiny_cpm_bee(vocab_file, arch={"num_layers": 1}), 1).eval()


def tiny_vision(width):
    from mpm_vision_beit3.config import Beit3Config
    from mpm_vision_beit3.encoder import Beit3Encoder

    from mpm_framework.contracts.base import BuildContext

    cfg = Beit3Config(preset="tiny", num_queries=6, mapping_dim=width)
    return _perturb(Beit3Encoder.from_config(cfg, BuildContext()), 2).eval()


def write_viscpm_chat(path, llm, vision):
    """VLU_CPMBee.state_dict(): vpm.* (BEiT3Wrapper with its MIM head), query,
    mapping.*, llm.*."""
    state = {("vpm." + k if k.startswith("beit3.") else k): v.detach().clone()
             for k, v in vision.state_dict().items()}
    state["vpm.mim_head.weight"] = torch.randn(16, vision.hidden_size)
    state["vpm.mim_head.bias"] = torch.randn(16)
    state.update({"llm." + k: v.detach().clone() for k, v in llm.state_dict().items()})
    torch.save(state, path)
    return state


@pytest.fixture
def chat_ckpt(tmp_path, vocab_file):
    llm = tiny_llm(vocab_file)
    vision = tiny_vision(llm.hidden_size)
    path = tmp_path / "VisCPM-Chat" / "pytorch_model.v1.bin"
    path.parent.mkdir()
    state = write_viscpm_chat(path, llm, vision)
    return path, llm, vision, state


def test_chat_import_loads_and_matches_the_source_modules(interop, tmp_path, vocab_file, chat_ckpt):
    from mpm_framework.connectors.modules import IdentityConnector
    from mpm_framework.contracts.prompt import Turn
    from mpm_framework.stacks.chat import ChatStack
    from mpm_framework.training.run_dir import load_run

    path, llm, vision, state = chat_ckpt
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["import", "viscpm", str(path), "--out", str(run), "-o", f"vocab={vocab_file}"])
    assert result.exit_code == 0, result.output
    stack = load_run(run)
    # every tensor of the file arrives under its MPM name (mim_head dropped)
    ours = stack.state_dict()
    for key, value in state.items():
        if key.startswith("vpm.mim_head."):
            continue
        name = "vision." + key[4:] if key.startswith("vpm.") else ("llm." + key[4:] if key.startswith("llm.")
                                                                   else "vision." + key)
        torch.testing.assert_close(ours[name], value, rtol=0, atol=0, msg=name)
    # and the stack computes what the source modules compute
    reference = ChatStack(llm, vision, IdentityConnector()).eval()
    enc = stack.encode_conversation([Turn("user", "<image>\nwhat is it?"), Turn("assistant", "red.")])
    batch = stack.llm.collate([enc])
    batch["pixel_values"] = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours_loss, ref_loss = stack(batch).loss, reference(batch).loss
    torch.testing.assert_close(ours_loss, ref_loss, rtol=0, atol=1e-6)
    assert stack.vision.num_queries == 6 and stack.config.model.connector.name == "identity"


def test_chat_import_answers_through_compose_chat(interop, tmp_path, vocab_file, chat_ckpt):
    path, *_ = chat_ckpt
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, ["import", "viscpm", str(path), "--out", str(run),
                                    "-o", f"vocab={vocab_file}"]).exit_code == 0
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 40), (220, 20, 20)).save(image)
    result = CliRunner().invoke(cli, ["compose", "chat", "--checkpoint", str(run), "--image", str(image),
                                      "--no-stream", "--max-new-tokens", "3", "what colour?"])
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(cli, ["import", "viscpm", str(path), "--out", str(run), "-o", f"vocab={vocab_file}"])
    assert again.exit_code != 0 and "already holds a run" in again.output


def test_bad_inputs_are_clear_errors(interop, tmp_path, vocab_file, chat_ckpt):
    path, _, _, state = chat_ckpt
    no_vocab = CliRunner().invoke(cli, ["import", "viscpm", str(path), "--out", str(tmp_path / "a")])
    assert no_vocab.exit_code != 0 and "vocab" in no_vocab.output
    extra = dict(state, **{"vpm.something_new": torch.zeros(1)})
    torch.save(extra, tmp_path / "odd.pt")
    odd = CliRunner().invoke(cli, ["import", "viscpm", str(tmp_path / "odd.pt"), "--out", str(tmp_path / "b"),
                                   "-o", f"vocab={vocab_file}"])
    assert odd.exit_code != 0 and "vpm.something_new" in odd.output
    typo = CliRunner().invoke(cli, ["import", "vizcpm", str(path), "--out", str(tmp_path / "c")])
    assert typo.exit_code != 0 and "viscpm" in typo.output


# -- VisCPM-Paint -----------------------------------------------------------------


def tiny_sd(root, cross_dim):
    """A Stable Diffusion folder of tiny size (what SDWrapper reads from SD-2.1 base)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_dim, attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
                        sample_size=16)
    unet.save_pretrained(root / "unet")
    vae.save_pretrained(root / "vae")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(root / "scheduler")
    return _perturb(unet, 3)


def test_paint_import_loads_and_matches(interop, tmp_path, vocab_file):
    from mpm_framework.training.run_dir import load_run

    llm = tiny_llm(vocab_file)
    sd = tmp_path / "sd21"
    unet = tiny_sd(sd, cross_dim=24)
    adapter = {"trans_block.w_out_res.weight": torch.randn(24, llm.hidden_size),
               "trans_block.layernorm.weight": torch.rand(24) + 0.5, "trans_block.layernorm.bias": torch.randn(24)}
    state = {**{"unet." + k: v.detach().clone() for k, v in unet.state_dict().items()}, **adapter,
             **{"llm." + k: v.detach().clone() for k, v in llm.state_dict().items()}}
    path = tmp_path / "VisCPM-Paint" / "pytorch_model.v1.bin"
    path.parent.mkdir()
    torch.save(state, path)
    run = tmp_path / "paint_run"
    result = CliRunner().invoke(cli, ["import", "viscpm", str(path), "--out", str(run),
                                      "-o", f"vocab={vocab_file}", "-o", f"sd={sd}"])
    assert result.exit_code == 0, result.output
    stack = load_run(run)
    ours = stack.state_dict()
    for key, value in state.items():
        if key.startswith("unet."):
            name = "decoder.unet." + key[5:]
        elif key.startswith("llm."):
            name = key
        else:
            name = "decoder.adapter." + {"trans_block.w_out_res.weight": "proj.weight",
                                         "trans_block.layernorm.weight": "norm.weight",
                                         "trans_block.layernorm.bias": "norm.bias"}[key]
        torch.testing.assert_close(ours[name], value, rtol=0, atol=0, msg=name)
    cfg = stack.config.model.decoder
    assert (cfg.guidance_scale, cfg.num_inference_steps, cfg.scheduler) == (7.5, 50, "ddpm")
    # the adapter maps CPM-Bee states as VisCPM's CPMBeeTransBlock: Linear (no bias) -> LayerNorm
    h = torch.randn(1, 3, llm.hidden_size)
    expected = torch.nn.functional.layer_norm(h @ adapter["trans_block.w_out_res.weight"].T, (24,),
                                              adapter["trans_block.layernorm.weight"],
                                              adapter["trans_block.layernorm.bias"], eps=1e-5)
    torch.testing.assert_close(stack.decoder.adapter.eval()(h), expected, rtol=1e-5, atol=1e-5)
    out = tmp_path / "img.png"
    painted = CliRunner().invoke(cli, ["compose", "paint", "--checkpoint", str(run), "a red circle",
                                       "--steps", "2", "--out", str(out)])
    assert painted.exit_code == 0, painted.output
    assert out.is_file()
    missing_sd = CliRunner().invoke(cli, ["import", "viscpm", str(path), "--out", str(tmp_path / "x"),
                                          "-o", f"vocab={vocab_file}"])
    assert missing_sd.exit_code != 0 and "sd=PATH" in missing_sd.output
