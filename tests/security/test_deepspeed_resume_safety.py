"""DeepSpeed resume never unpickles code: a ``__reduce__`` payload in any file
DeepSpeed reads from a checkpoint is refused (naming the file) and never runs,
while a genuine checkpoint still resumes exactly.

In process on one CPU rank (gloo): the engine is built as the trainer builds it,
trained two steps, saved through DeepSpeed's own ``save_checkpoint``; each
state file is then poisoned in turn and resumed into a fresh engine."""

from __future__ import annotations

import shutil
import socket

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from mpm_framework.security import UnsafeFileError, load_torch_file

pytest.importorskip("deepspeed")


class Tiny(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, batch):
        return self.b(torch.tanh(self.a(batch["x"]))).pow(2).mean()


def _run(stage: int):
    return OmegaConf.create(dict(
        engine="deepspeed", device="cpu", precision="fp32", lr=1e-2, weight_decay=0.01, betas=[0.9, 0.999],
        eps=1e-8, zero_stage=stage, deepspeed_config=None, batch_size=2, grad_accum=1, max_grad_norm=1.0,
        offload=False, find_unused_parameters=False))


def _engine(stage: int, seed: int):
    from mpm_framework.training.engines import make_engine

    model = Tiny(seed)
    engine = make_engine(_run(stage))
    engine.setup(model, list(model.named_parameters()))
    return engine


def _steps(engine, n: int, seed: int = 5) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(n):
        loss = engine.forward({"x": torch.randn(2, 6, generator=gen)})
        engine.backward(loss)
        engine.step()
        losses.append(float(loss))
    return losses


@pytest.fixture(scope="module")
def one_rank():
    """A one-process gloo group for the module; the environment is restored after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                               MASTER_PORT=str(port)).items():
            mp.setenv(key, value)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@pytest.fixture(scope="module", params=[2, 3], ids=["zero2", "zero3"])
def saved(request, one_rank, tmp_path_factory):
    """(stage, checkpoint folder, the trained engine's next two losses) after two steps."""
    stage = request.param
    folder = tmp_path_factory.mktemp(f"zero{stage}")
    engine = _engine(stage, seed=0)
    _steps(engine, 2, seed=1)
    engine.save_state(folder)
    after = _steps(engine, 2, seed=2)
    return stage, folder, after


def test_a_genuine_checkpoint_resumes_exactly(saved):
    stage, folder, after = saved
    engine = _engine(stage, seed=123)  # other initial weights: everything must come from the checkpoint
    engine.load_state(folder, {"deepspeed": True})
    assert _steps(engine, 2, seed=2) == after


def test_a_payload_in_any_deepspeed_file_is_refused_and_never_runs(saved, tmp_path, poison):
    stage, folder, _ = saved
    files = sorted(p.relative_to(folder) for p in (folder / "deepspeed").rglob("*.pt"))
    # Every file DeepSpeed writes (and reads on resume): model states and the ZeRO optimizer shard.
    assert any("model_states" in f.name for f in files) and any("optim_states" in f.name for f in files)
    for rel in files:
        copy = tmp_path / rel.name.replace(".pt", "")
        shutil.copytree(folder, copy)
        marker = tmp_path / f"marker-{rel.name}"
        poison(copy / rel, marker)  # checks the payload is live

        engine = _engine(stage, seed=7)
        with pytest.raises(UnsafeFileError) as info:
            engine.load_state(copy, {"deepspeed": True})
        assert rel.name in str(info.value) and "exec" in str(info.value)
        assert not marker.exists(), f"the payload in {rel} ran"


def test_load_torch_file_refuses_a_plain_pickle_and_reads_tensors(tmp_path, payload):
    marker = tmp_path / "marker"
    torch.save({"w": torch.ones(2), "evil": payload(marker)}, tmp_path / "bad.pt")
    with pytest.raises(UnsafeFileError, match=r"bad\.pt"):
        load_torch_file(tmp_path / "bad.pt")
    assert not marker.exists()
    torch.save({"w": torch.ones(2), "n": 3}, tmp_path / "good.pt")
    good = load_torch_file(tmp_path / "good.pt")
    assert torch.equal(good["w"], torch.ones(2)) and good["n"] == 3
