"""Engines: how a step runs on one process, on many with torch DDP, or with
DeepSpeed ZeRO-2/3. The trainer only talks to :class:`Engine`.

Processes are started by ``torchrun`` / ``deepspeed`` (or ``mpm ... train
--nproc N``, which calls torchrun); an engine reads ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` from the environment. On CPU the collective backend is gloo.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config.choices import torch_dtype
from ..errors import ConfigError, did_you_mean
from .checkpoint import optimizer_from_tensors, optimizer_to_tensors

ENGINES = ("single", "ddp", "deepspeed")


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the launcher's environment."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single_process_env() -> None:
    """A one-process group when DDP/DeepSpeed is asked for without a launcher."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))


def pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("run.device=cuda but no CUDA device is visible; use run.device=cpu")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ConfigError(f"unknown run.device '{name}'; use auto, cpu or cuda")
    return torch.device("cpu")


def param_groups(named: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and norm weights (1-D tensors)."""
    if weight_decay <= 0:
        return [{"params": [p for _, p in named], "weight_decay": 0.0}]
    decay = [p for _, p in named if p.ndim >= 2]
    plain = [p for _, p in named if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0})
    return groups


class Engine:
    """Single process (also the base of the others)."""

    name = "single"

    def __init__(self, run: Any) -> None:
        self.run = run
        self.rank, self.world_size, self.local_rank = 0, 1, 0
        self.device = pick_device(str(run.device), 0)
        self.precision = str(run.precision)
        self.autocast_dtype = torch_dtype(self.precision, "run.precision")  # checks the name
        self.model: Any = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.trainable: list[tuple[str, nn.Parameter]] = []
        self._owns_group = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- setup -------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        run = self.run
        return torch.optim.AdamW(param_groups(self.trainable, float(run.weight_decay)), lr=float(run.lr),
                                 betas=tuple(float(b) for b in run.betas), eps=float(run.eps))

    def setup(self, stack: nn.Module, trainable: list[tuple[str, nn.Parameter]]) -> None:
        self.stack, self.trainable = stack, trainable
        self.names = {id(p): n for n, p in trainable}
        stack.to(self.device)
        self.optimizer = self._optimizer()
        if self.precision == "fp16":
            self.scaler = torch.amp.GradScaler(self.device.type)
        self.model = self._wrap(stack)

    def _wrap(self, stack: nn.Module) -> Any:
        return stack

    # -- a step ------------------------------------------------------------------
    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def accumulating(self, last: bool):
        """Context of one micro-batch's forward+backward (DDP skips the gradient
        all-reduce except on the last)."""
        return contextlib.nullcontext()

    def forward(self, batch: dict[str, Any]) -> Any:
        return self.model(batch)

    def backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> float | None:
        """Clip, update, zero the gradients; returns the gradient norm before clipping."""
        params = [p for _, p in self.trainable]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        max_norm = float(self.run.max_grad_norm)
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    # -- collectives -------------------------------------------------------------
    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return list(values)

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

    def barrier(self) -> None:
        pass

    # -- state -------------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Full trainable tensors plus the buffers training changes (a collective
        for ZeRO-3: call on every process)."""
        from .checkpoint import trained_buffers

        return {**self.full_tensors(self.trainable), **trained_buffers(self.stack)}

    def full_tensors(self, named: list[tuple[str, nn.Parameter]]) -> dict[str, torch.Tensor]:
        """Whole tensors of ``named`` parameters (gathered where they are partitioned)."""
        return {n: p.detach() for n, p in named}

    def save_state(self, folder: Path) -> dict[str, Any]:
        """Write optimizer state into ``folder``; returns JSON-able extras."""
        from .checkpoint import save_tensors_atomic

        extras: dict[str, Any] = {}
        if self.is_main:
            tensors, meta = optimizer_to_tensors(self.optimizer, self.names)
            save_tensors_atomic(tensors, folder / "optimizer.safetensors")
            extras["optimizer"] = meta
            if self.scaler is not None:
                extras["scaler"] = self.scaler.state_dict()
        return extras

    def load_state(self, folder: Path, extras: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        tensors = load_file(str(folder / "optimizer.safetensors"), device=str(self.device))
        optimizer_from_tensors(self.optimizer, self.names, tensors, extras["optimizer"])
        if self.scaler is not None and extras.get("scaler"):
            self.scaler.load_state_dict(extras["scaler"])

    def close(self) -> None:
        if self._owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class _Distributed(Engine):
    def __init__(self, run: Any) -> None:
        if "WORLD_SIZE" not in os.environ:
            _single_process_env()
        self.rank, self.world_size, self.local_rank = dist_env()
        super().__init__(run)
        self.rank, self.world_size, self.local_rank = dist_env()
        self.device = pick_device(str(run.device), self.local_rank)
        self._init_group()

    def _backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"

    def _init_group(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend=self._backend())
            self._owns_group = True

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def _comm_device(self) -> torch.device:
        return self.device

    def gather_objects(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


class DDPEngine(_Distributed):
    name = "ddp"

    def _wrap(self, stack: nn.Module) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(stack, device_ids=ids,
                                       find_unused_parameters=bool(self.run.find_unused_parameters))

    def accumulating(self, last: bool):
        return contextlib.nullcontext() if last else self.model.no_sync()


def deepspeed_config(run: Any, world_size: int) -> dict[str, Any]:
    """The shipped ``zero<stage>.json``, the user's ``run.deepspeed_config`` merged
    over it, and "auto" values filled from the run config."""
    stage = int(run.zero_stage)
    if stage not in (0, 1, 2, 3):
        raise ConfigError(f"run.zero_stage must be 0-3, got {stage}")
    shipped = "zero3.json" if stage == 3 else "zero2.json"
    config = json.loads(resources.files("mpm_framework.training.deepspeed").joinpath(shipped).read_text())
    if run.deepspeed_config:
        path = Path(str(run.deepspeed_config))
        if not path.is_file():
            raise ConfigError(f"run.deepspeed_config not found: {path}")
        try:
            user = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"run.deepspeed_config {path} is not valid JSON: {exc}") from None
        config = _deep_merge(config, user)
    for key in ("optimizer", "scheduler"):
        if key in config:
            raise ConfigError(f"the DeepSpeed config names a '{key}'; MPM passes its own AdamW and "
                              f"schedule (run.lr, run.schedule) -- remove '{key}' from {run.deepspeed_config}")
    zero = config.setdefault("zero_optimization", {})
    if zero.get("stage", "auto") not in ("auto", stage):
        raise ConfigError(f"run.zero_stage={stage} but {run.deepspeed_config} sets zero_optimization.stage="
                          f"{zero['stage']}; make them agree (--zero-stage)")
    zero["stage"] = stage
    micro, accum = int(run.batch_size), int(run.grad_accum)
    fill = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "train_batch_size": micro * accum * world_size,
        "gradient_clipping": float(run.max_grad_norm),
    }
    for key, value in fill.items():
        if config.get(key, "auto") not in ("auto", value):
            raise ConfigError(f"the DeepSpeed config sets {key}={config[key]} but the run gives {value}; "
                              f"set it through run.batch_size / run.grad_accum / run.max_grad_norm")
        config[key] = value
    precision = str(run.precision)
    for key, on in (("fp16", precision == "fp16"), ("bf16", precision == "bf16")):
        section = config.setdefault(key, {})
        if section.get("enabled", "auto") == "auto":
            section["enabled"] = on
    if run.offload:
        zero.setdefault("offload_optimizer", {"device": "cpu", "pin_memory": torch.cuda.is_available()})
        if zero["stage"] == 3:
            zero.setdefault("offload_param", {"device": "cpu", "pin_memory": torch.cuda.is_available()})
        config.setdefault("zero_force_ds_cpu_optimizer", False)
    leftover = [k for k, v in _walk(config) if v == "auto"]
    if leftover:
        raise ConfigError(f"DeepSpeed config values left at 'auto' that MPM does not fill: {', '.join(leftover)}")
    return config


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _walk(d: dict[str, Any], prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _walk(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


# The non-tensor types DeepSpeed pickles into its state files (deepspeed/runtime/zero/stage_1_and_2.py,
# stage3.py and bf16_optimizer.py ``state_dict``: the ZeRO stage, parameter fragment addresses, the loss
# scaler); model states hold only tensors, sizes and plain containers. Plain data classes: allowing them
# lets the unpickler rebuild their fields, never call anything else.
DEEPSPEED_STATE_TYPES = (
    ("deepspeed.runtime.zero.config", "ZeroStageEnum"),
    ("deepspeed.utils.tensor_fragment", "fragment_address"),
    ("deepspeed.runtime.fp16.loss_scaler", "LossScaler"),
    ("deepspeed.runtime.fp16.loss_scaler", "DynamicLossScaler"),
)


def deepspeed_state_types() -> list[type]:
    """The classes of :data:`DEEPSPEED_STATE_TYPES` this DeepSpeed version has."""
    import importlib

    found = []
    for module, name in DEEPSPEED_STATE_TYPES:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return found


class DeepSpeedEngine(_Distributed):
    name = "deepspeed"

    def _init_group(self) -> None:
        try:
            import deepspeed
        except ImportError:
            raise ConfigError("run.engine=deepspeed needs DeepSpeed: pip install 'mpm-framework[distributed]' "
                              "(DS_BUILD_OPS=0)") from None
        import torch.distributed as dist

        if not dist.is_initialized():
            self._owns_group = True
        deepspeed.init_distributed(dist_backend=self._backend(), verbose=False)

    def setup(self, stack: nn.Module, trainable: list[tuple[str, nn.Parameter]]) -> None:
        import deepspeed

        self.stack, self.trainable = stack, trainable
        self.names = {id(p): n for n, p in trainable}
        stack.to(self.device)
        self.ds_config = deepspeed_config(self.run, self.world_size)
        optimizer = self._optimizer()
        self.model, self.optimizer, _, _ = deepspeed.initialize(
            model=stack, optimizer=optimizer, model_parameters=[p for _, p in trainable], config=self.ds_config,
        )
        self.zero_stage = int(self.ds_config["zero_optimization"]["stage"])

    def autocast(self):
        return contextlib.nullcontext()  # DeepSpeed casts the model itself (fp16/bf16 sections)

    def forward(self, batch: dict[str, Any]) -> Any:
        return self.model(batch)

    def backward(self, loss: torch.Tensor) -> None:
        # The trainer already weights micro-batches (units / total x processes).
        self.model.backward(loss, scale_wrt_gas=False)
        self.model.step()  # DeepSpeed steps the optimizer only at the accumulation boundary

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> float | None:
        norm = self.model.get_global_grad_norm()
        return None if norm is None else float(norm)

    def full_tensors(self, named: list[tuple[str, nn.Parameter]]) -> dict[str, torch.Tensor]:
        if getattr(self, "zero_stage", 0) == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters([p for _, p in named], modifier_rank=None):
                return {n: p.detach().to("cpu", copy=True) for n, p in named}
        return {n: p.detach() for n, p in named}

    def save_state(self, folder: Path) -> dict[str, Any]:
        self.model.save_checkpoint(str(folder / "deepspeed"), tag="state", save_latest=False,
                                   exclude_frozen_parameters=True)
        return {"deepspeed": True}

    def load_state(self, folder: Path, extras: dict[str, Any]) -> None:
        if not (folder / "deepspeed").is_dir():
            raise ConfigError(f"{folder} was not written by the DeepSpeed engine; resume with the engine "
                              "that wrote it")
        from ..security import weights_only_torch_loads

        # DeepSpeed unpickles its state files (torch.load(weights_only=False)); a checkpoint folder is
        # data, so every file it reads here is loaded weights-only, allowing only the types it stores.
        with weights_only_torch_loads(deepspeed_state_types()):
            path, _ = self.model.load_checkpoint(str(folder / "deepspeed"), tag="state", load_module_strict=False,
                                                 load_optimizer_states=True, load_lr_scheduler_states=False)
        if path is None:
            raise ConfigError(f"DeepSpeed found no state to resume in {folder / 'deepspeed' / 'state'}")


def make_engine(run: Any) -> Engine:
    name = str(run.engine)
    if name not in ENGINES:
        raise ConfigError(f"unknown run.engine '{name}'.{did_you_mean(name, ENGINES)} Engines: {', '.join(ENGINES)}")
    _, world, _ = dist_env()
    if name == "single" and world > 1:
        name = "ddp"  # launched by torchrun with several processes: data parallel is what was meant
    if name == "single":
        return Engine(run)
    return DDPEngine(run) if name == "ddp" else DeepSpeedEngine(run)
