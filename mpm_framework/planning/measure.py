"""Measure the real memory of one training step on this CPU, to check the plan.

Run in a fresh process (``measure_in_subprocess``) with glibc's mmap threshold
fixed low, so that freed tensors go back to the OS and the peak resident set
(VmHWM, reset through /proc/self/clear_refs) reflects live tensors only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..config.loading import save_config
from ..errors import ExecutionError


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise ExecutionError(f"measuring a step needs Linux's /proc/self/status with {field}, which this system "
                         "lacks; run `mpm plan` without --measure here")


def measure_step(cfg_path: str, micro_batch: int, seq_len: int) -> dict[str, int]:
    import torch

    from ..composition import build_stack
    from ..config.loading import resolve_config
    from .estimate import stage_trainable

    torch.manual_seed(0)
    cfg = resolve_config(recipe=cfg_path)
    stack = build_stack(cfg)
    trainable, frozen = stage_trainable(stack, cfg)
    stack.set_trainable(trainable, frozen)
    params = [p for p in stack.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def batch_of(b: int, s: int):
        batch = stack.llm.synthetic_batch(b, s, stack.num_image_tokens)
        batch["pixel_values"] = torch.randn(b, 3, stack.vision.image_size, stack.vision.image_size)
        return batch

    # One full step first: it warms kernels and thread pools and creates the
    # optimizer state, so the measured step is a steady-state one.
    batch = batch_of(micro_batch, seq_len)
    stack(batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    loss = stack(batch).loss
    loss.backward()
    optimizer.step()
    peak = _status_kib("VmHWM")
    # The optimizer state was resident before the step: count it as the plan does.
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                if torch.is_tensor(t))
    return {"before": before * 1024, "peak": peak * 1024, "optimizer_state": state,
            "step_bytes": (peak - before) * 1024 + state}


def _in_process_modules() -> list[str]:
    """Plugin modules registered in this process, so the child sees them too."""
    import types

    from ..plugins import INFO, get_plugin_manager

    pm = get_plugin_manager()
    names = []
    for name, info in INFO.items():
        plugin = pm.get_plugin(name)
        if info.distribution == "(in-process)" and isinstance(plugin, types.ModuleType):
            names.append(plugin.__name__)
    return names


def measure_in_subprocess(cfg, micro_batch: int, seq_len: int) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.yaml")
        save_config(cfg, path)
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
                   MPM_PLUGINS=",".join(filter(None, [os.environ.get("MPM_PLUGINS", ""), *_in_process_modules()])))
        out = subprocess.run(
            [sys.executable, "-m", "mpm_framework.planning.measure", path, str(micro_batch), str(seq_len)],
            capture_output=True, text=True, env=env, check=False,
        )
        if out.returncode != 0:
            raise ExecutionError(
                "measuring a training step in a subprocess failed; fix the error below (its config is the one "
                "planned), or run `mpm plan` without --measure:\n" + out.stderr[-2000:]
            )
        return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure_step(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
