"""The trainer: one loop for every stage and engine.

``train_stage(stack, cfg)`` trains ``stack`` in the stage ``cfg.run.stage``:
it freezes/unfreezes per the stage (printing the trainable set), reads the data
as a deterministic global stream, accumulates micro-batches weighted by their
loss units (so the step loss is the mean over the whole global batch, for any
number of processes), clips, steps AdamW under the warmup+decay schedule, logs
JSON lines, evaluates every N steps, and writes atomic checkpoints from which
``run.resume`` continues with the same batches, RNG states and optimizer state
-- the loss curve of a resumed run is the uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from ..config.loading import save_config
from ..contracts.llm import PivotLLM
from ..errors import ConfigError, MPMError
from ..seeding import seeded
from ..stacks.text import TextStack
from ..stacks.trainable import format_counts
from . import checkpoint as ckpt
from .engines import Engine, make_engine
from .lora import apply_lora, lora_parameter_names
from .metrics import MetricsWriter, loss_curve, plot_loss_curve
from .pipeline import MicroBatch, StepData, StepProducer
from .quality import Ledger
from .recipes import stage_config
from .run_dir import load_weights, record_stage, write_final
from .run_lock import RunLocked, acquire
from .schedule import lr_at
from .sources import RecordSource, in_memory_source, open_source
from .stages import Stage, get_stage, resolve_freeze_sets

EvalFn = Callable[[Any, int], dict[str, float]]


@dataclass
class TrainResult:
    stage: str
    run_dir: Path  # the stage folder
    steps: int  # optimizer steps completed (including those before a resume)
    final_loss: float | None
    losses: list[float]  # loss of every step, step 1 first
    evals: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # records read / skipped by reason
    trainable: dict[str, tuple[int, int]] = field(default_factory=dict)
    checkpoint: Path | None = None
    exhausted: bool = False  # a one-shot iterable of samples ran out before max_steps
    elapsed_s: float = 0.0


class TrainingInterrupted(MPMError):
    """The run stopped on SIGTERM/SIGINT after saving a checkpoint of the last full step."""


class _StopSignals:
    """SIGTERM / SIGINT (first time) ask the loop to stop at the end of the current
    step, save and exit -- a pre-empted or Ctrl-C'ed run loses no finished step.
    A second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        print(f"\n{self.requested}: stopping after this step and saving a checkpoint "
              "(Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _Throughput:
    """Samples and tokens per second since the last log line."""

    def __init__(self) -> None:
        self.started, self.samples, self.tokens = time.time(), 0.0, 0.0

    def add(self, row: dict[str, Any]) -> None:
        """Count a step's ``samples``/``tokens`` and write the rates into its row."""
        self.samples += row["samples"]
        self.tokens += row["tokens"]
        elapsed = max(time.time() - self.started, 1e-9)
        row.update(samples_per_s=round(self.samples / elapsed, 3), tokens_per_s=round(self.tokens / elapsed, 1))


class _Log:
    def __init__(self, engine: Engine) -> None:
        self.engine, self.bar = engine, None

    def __call__(self, msg: str) -> None:
        if not self.engine.is_main:
            return
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, flush=True)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def _sources(cfg: Any, stage: Stage, stack: Any, train_samples: Iterable[Any] | None) -> tuple[list[RecordSource], list[float]]:
    streaming = bool(cfg.data.streaming)
    sources: list[RecordSource] = []
    weights: list[float] = []
    if train_samples is not None:
        sources.append(in_memory_source(train_samples))
        weights.append(1.0)
    for src in cfg.data.train:
        if src.kind not in stage.sample_kinds:
            raise ConfigError(f"data.train source {src.path} holds '{src.kind}' records but stage "
                              f"'{stage.name}' trains on {'/'.join(stage.sample_kinds)}")
        sources.append(open_source(src, streaming))
        weights.append(float(src.weight))
    extra = stage.extra_sources(stack, cfg)
    shares = sum(share for _, share in extra)
    if extra and not sources:
        raise ConfigError(f"stage '{stage.name}' has only mixed-in data ({extra[0][0].name}); set data.train")
    total = sum(weights) or 1.0
    weights = [w / total * (1.0 - shares) for w in weights]
    for source, share in extra:
        sources.append(source)
        weights.append(share)
    return sources, weights


class _DataLoaderSteps(torch.utils.data.IterableDataset):
    """Steps prepared by data-loader workers: worker k takes every k-th step, and
    the loader's round-robin returns them in order."""

    def __init__(self, producer: StepProducer) -> None:
        self.producer = producer

    def __iter__(self) -> Iterator[StepData]:
        info = torch.utils.data.get_worker_info()
        if info is not None:
            self.producer.worker = (info.id, info.num_workers)
        return iter(self.producer)


def _step_iterator(producer: StepProducer, workers: int) -> Iterator[StepData]:
    if workers <= 0:
        return iter(producer)
    loader = torch.utils.data.DataLoader(_DataLoaderSteps(producer), batch_size=None, num_workers=workers,
                                         collate_fn=lambda x: x, persistent_workers=False, prefetch_factor=2)
    return iter(loader)


class Trainer:
    def __init__(self, stack: Any, cfg: Any, train_samples: Iterable[Any] | None = None,
                 eval_fn: EvalFn | None = None, eval_samples: Iterable[Any] | None = None,
                 progress: bool = True, callbacks: Iterable[Callable[[int, dict[str, Any]], None]] = ()) -> None:
        self.cfg = stage_config(cfg)
        self.run, self.data_cfg = self.cfg.run, self.cfg.data
        self.stage = get_stage(str(self.run.stage))
        if isinstance(stack, PivotLLM):  # a bare pivot LLM trains as a text stack
            stack = TextStack(stack, config=cfg)
        self.stack = stack
        self.stage.check_stack(stack)
        self.train_samples, self.eval_samples, self.eval_fn = train_samples, eval_samples, eval_fn
        self.progress = progress and bool(self.run.progress)
        self.callbacks = list(callbacks)
        for key in ("batch_size", "grad_accum", "max_steps"):
            if int(self.run[key]) < 1:
                raise ConfigError(f"run.{key} must be >= 1, got {self.run[key]}")

    # -- set-up ------------------------------------------------------------------
    def _prepare_folder(self) -> Path | None:
        """Checks the stage folder; returns the checkpoint to resume from."""
        run, folder = self.run, self.folder
        root = folder / "checkpoints"
        if self.engine.is_main:
            ckpt.clean_partial(root)
        self.engine.barrier()
        latest = ckpt.latest_checkpoint(root)
        if run.resume:
            if latest is None:
                self.log(f"resume: no checkpoint in {root}; starting from scratch")
            return latest
        if latest is not None or (folder / "final").exists():
            if not run.overwrite:
                raise ConfigError(
                    f"{folder} already holds a training run of stage '{self.stage.name}'. Continue it with "
                    "--resume (run.resume=true), train into another run.output_dir, or start over with "
                    "run.overwrite=true (deletes its checkpoints)"
                )
            self.engine.barrier()
            if self.engine.is_main:
                for sub in ("checkpoints", "final"):
                    shutil.rmtree(folder / sub, ignore_errors=True)
            self.engine.barrier()
        return None

    def _freeze(self) -> dict[str, tuple[int, int]]:
        trainable, frozen = resolve_freeze_sets(self.stage, self.stack, self.cfg)
        counts = self.stack.set_trainable(trainable, frozen)
        lora = set(lora_parameter_names(self.stack))
        if lora:
            for name, p in self.stack.named_parameters():
                if name in lora:
                    p.requires_grad_(True)
            counts = {
                cname: (sum(p.numel() for p in m.parameters() if p.requires_grad),
                        sum(p.numel() for p in m.parameters()))
                for cname, m in self.stack.components().items() if m is not None
            }
        self.trainable_specs = trainable + (["lora"] if lora else [])
        if sum(t for t, _ in counts.values()) == 0:
            raise ConfigError(f"nothing to train: the trainable set {trainable} (frozen {frozen}) selects no "
                              "parameters; set run.trainable")
        return counts

    # -- main ----------------------------------------------------------------------
    def train(self) -> TrainResult:
        started = time.time()
        self.engine = engine = make_engine(self.run)
        self.log = _Log(engine)
        try:
            with self._output_lock():
                return self._train(started)
        finally:
            engine.close()

    @contextlib.contextmanager
    def _output_lock(self) -> Iterator[None]:
        """Hold ``run.output_dir`` exclusively (see run_lock.py) before anything is
        written there. Rank 0 takes the lock for all processes; when it cannot,
        every process stops at once (nobody waits in a collective)."""
        lock, error = None, None
        if self.engine.is_main:
            try:
                lock = acquire(str(self.run.output_dir), notice=self.log)
            except Exception as exc:  # re-raised below, after telling the other ranks
                error = exc
        if self.engine.all_reduce_sum([float(error is not None)])[0] > 0:
            if error is not None:
                raise error
            raise RunLocked(f"rank 0 could not lock {self.run.output_dir} (see its message)")
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    def _train(self, started: float) -> TrainResult:
        run, cfg, stage, engine, log = self.run, self.cfg, self.stage, self.engine, self.log
        self.folder = folder = Path(str(run.output_dir)) / stage.name
        if engine.is_main:
            folder.mkdir(parents=True, exist_ok=True)
        engine.barrier()
        resume_from = self._prepare_folder()
        inherited: list[str] = []
        if run.init_from:
            inherited = load_weights(self.stack, str(run.init_from))
            log(f"initialised {len(inherited)} tensors from {run.init_from}")
        with seeded(int(run.seed), "build/lora"):  # adapter init follows the run's seed
            apply_lora(self.stack, run.lora)
        counts = self._freeze()
        if run.gradient_checkpointing:
            self.stack.enable_gradient_checkpointing()
        log(f"stage '{stage.name}' ({stage.description}) -- engine {engine.name}, "
            f"{engine.world_size} process(es), global batch {run.batch_size} x {run.grad_accum} x "
            f"{engine.world_size}")
        log(f"trainable set: {', '.join(self.trainable_specs)}\n{format_counts(counts)}")
        if engine.is_main:
            save_config(cfg, folder / "config.yaml")

        state: dict[str, Any] = {}
        if resume_from is not None:
            state = json.loads((resume_from / "trainer_state.json").read_text(encoding="utf-8"))
            if int(state.get("world_size", engine.world_size)) != engine.world_size:
                log(f"note: the checkpoint was written by {state['world_size']} processes, now "
                    f"{engine.world_size}; the data order is the same global stream")
            load_weights(self.stack, resume_from / "trainable.safetensors")

        named = [(n, p) for n, p in self.stack.named_parameters() if p.requires_grad]
        sources, weights = _sources(cfg, stage, self.stack, self.train_samples)
        ctx = stage.make_context(self.stack, cfg)
        engine.setup(self.stack, named)
        if resume_from is not None:
            engine.load_state(resume_from, state.get("engine", {}))

        start = int(state.get("step", 0))
        producer = StepProducer(
            stage, ctx, sources, weights, seed=int(run.seed), batch_size=int(run.batch_size),
            grad_accum=int(run.grad_accum), rank=engine.rank, world_size=engine.world_size, start_step=start,
            state=state.get("data"), shuffle=bool(self.data_cfg.shuffle), buffer=int(self.data_cfg.shuffle_buffer),
            max_examples=int(self.data_cfg.bad_examples),
        )
        ledger = Ledger.from_state(state.get("ledger"), int(self.data_cfg.bad_examples))
        self.local_examples: list[str] = list(ledger.examples) if engine.is_main else []
        metrics = MetricsWriter(folder / "metrics.jsonl", start if resume_from is not None else None) \
            if engine.is_main else None
        if resume_from is None or not ckpt.load_rng(resume_from / "rng", engine.rank):
            _seed_all(int(run.seed) + 1000 * engine.rank + start)
        if resume_from is not None:
            log(f"resumed from {resume_from} at step {start}")

        with _StopSignals() as self.stop:
            result = self._loop(producer, start, ledger, metrics, counts, started)
        result.trainable = counts
        self._finish(result, ledger, inherited, metrics)
        return result

    def _loop(self, producer: StepProducer, start: int, ledger: Ledger, metrics: MetricsWriter | None,
              counts: dict[str, tuple[int, int]], started: float) -> TrainResult:
        max_steps = int(self.run.max_steps)
        result = self._resumed_result(start, metrics)
        bar = self._progress_bar(start, max_steps)
        self.stack.train()
        self._throughput = _Throughput()
        self._stop_now = False
        steps = _step_iterator(producer, int(self.data_cfg.num_workers)) if start < max_steps else iter(())
        step, last_saved = start, start
        try:
            for data in steps:
                if data.step >= max_steps:
                    break
                step = data.step + 1
                loss, row = self._train_step(data, ledger)
                result.losses.append(loss)
                self._report_step(step, max_steps, loss, row, ledger, metrics, bar)
                if self._after_step(step, max_steps, data, row, ledger, metrics, result):
                    last_saved = step
                self._last_data = data
                if self._stop_now or step >= max_steps:
                    break
            else:
                if step < max_steps:
                    result.exhausted = True
                    self.log(f"the training samples ran out after {step} steps (max_steps {max_steps})")
        finally:
            if bar is not None:
                bar.close()
                self.log.bar = None
        self._save_last(result, step, last_saved, ledger)
        result.steps = step
        self._stop_if_asked(result, step, max_steps, metrics)
        if self.eval_fn is not None or self._has_eval_data():
            result.evals.append(self._evaluate(step, metrics))
        result.final_loss = result.losses[-1] if result.losses else None
        result.elapsed_s = time.time() - started
        return result

    # -- the steps of the loop -------------------------------------------------------
    def _resumed_result(self, start: int, metrics: MetricsWriter | None) -> TrainResult:
        """A result holding the loss curve of the steps a resumed run already did."""
        result = TrainResult(self.stage.name, self.folder, start, None, [])
        if metrics is not None and start:
            result.losses = [loss for _, loss in loss_curve(self.folder / "metrics.jsonl")][:start]
        return result

    def _progress_bar(self, start: int, max_steps: int) -> Any:
        """A tqdm bar on the main process (log lines go through it), or None."""
        if not (self.progress and self.engine.is_main and start < max_steps):
            return None
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, initial=start, desc=self.stage.name, unit="step", dynamic_ncols=True)
        self.log.bar = bar
        return bar

    def _report_step(self, step: int, max_steps: int, loss: float, row: dict[str, Any], ledger: Ledger,
                     metrics: MetricsWriter | None, bar: Any) -> None:
        """Throughput into the metrics row, then the metrics file, the bar or a log line."""
        run = self.run
        self._throughput.add(row)
        if metrics is not None:
            metrics.write(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{row['lr']:.2e}",
                            sps=f"{row['samples_per_s']:.1f}", skipped=ledger.skipped, refresh=False)
        elif step % max(1, int(run.log_every)) == 0:
            self.log(f"[{self.stage.name}] step {step}/{max_steps} loss {loss:.4f} lr {row['lr']:.2e} "
                     f"{row['samples_per_s']:.1f} samples/s")
        if step % max(1, int(run.log_every)) == 0:
            self._throughput = _Throughput()

    def _after_step(self, step: int, max_steps: int, data: StepData, row: dict[str, Any], ledger: Ledger,
                    metrics: MetricsWriter | None, result: TrainResult) -> bool:
        """Callbacks, the data check, periodic eval and checkpoint; True when it saved."""
        run = self.run
        for callback in self.callbacks:
            callback(step, row)
        self._check_data(ledger, final=False)
        if int(run.eval_every) > 0 and step % int(run.eval_every) == 0 and step < max_steps:
            result.evals.append(self._evaluate(step, metrics))
        if int(run.save_every) > 0 and step % int(run.save_every) == 0:
            result.checkpoint = self._save(step, data, ledger)
            return True
        return False

    def _save_last(self, result: TrainResult, step: int, last_saved: int, ledger: Ledger) -> None:
        """Checkpoint the last step unless it was just saved (or name the latest one)."""
        if step > last_saved:
            result.checkpoint = self._save(step, self._last_data, ledger)
        elif result.checkpoint is None:
            result.checkpoint = ckpt.latest_checkpoint(self.folder / "checkpoints")

    def _stop_if_asked(self, result: TrainResult, step: int, max_steps: int, metrics: MetricsWriter | None) -> None:
        """A signal stopped the run early: close the metrics and say how to continue."""
        if self._stop_now and step < max_steps:
            if metrics is not None:
                metrics.close()
            raise TrainingInterrupted(
                f"stopped by {self.stop.requested or 'a signal'} at step {step}/{max_steps}; checkpoint "
                f"{result.checkpoint}. Continue with --resume (run.resume=true)"
            )

    def _train_step(self, data: StepData, ledger: Ledger) -> tuple[float, dict[str, Any]]:
        engine = self.engine
        lr = lr_at(data.step, self.run)
        engine.set_lr(lr)
        local_units = sum(m.units for m in data.micro)
        total_units = engine.all_reduce_sum([float(local_units)])[0]
        weighted = 0.0
        for a, micro in enumerate(data.micro):
            weighted += self._micro_step(micro, a == len(data.micro) - 1, total_units)
        grad_norm = engine.step()
        local = [weighted, sum(m.samples for m in data.micro), sum(m.tokens for m in data.micro),
                 float(self.stop.requested is not None), *data.ledger.counts_vector()]
        sums = engine.all_reduce_sum(local)
        self._stop_now = sums[3] > 0  # every process stops after the same step
        step_ledger = Ledger.from_vector([int(round(v)) for v in sums[4:]], [], ledger.max_examples)
        ledger.merge(step_ledger)
        if data.ledger.examples and len(self.local_examples) < ledger.max_examples:
            self.local_examples.extend(data.ledger.examples[: ledger.max_examples - len(self.local_examples)])
        ledger.examples = list(self.local_examples)
        loss = sums[0] / total_units if total_units else float("nan")
        langs: dict[str, int] = {}
        for micro in data.micro:
            for k, v in micro.langs.items():
                langs[k] = langs.get(k, 0) + v
        row = {"event": "step", "step": data.step + 1, "loss": loss, "lr": lr,
               "grad_norm": grad_norm if grad_norm is None or math.isfinite(grad_norm) else None,
               "samples": int(sums[1]), "tokens": int(sums[2]), "units": int(total_units),
               "epoch": data.epoch, "skipped": ledger.skipped, "seen": ledger.seen}
        if langs and engine.world_size == 1:
            row["langs"] = langs
        return loss, row

    def _micro_step(self, micro: MicroBatch, last: bool, total_units: float) -> float:
        engine = self.engine
        batch = _to_device(micro.batch, engine.device)
        with engine.accumulating(last):
            with engine.autocast():
                loss = self.stage.compute_loss(engine.forward, batch)
            if loss is None:
                raise MPMError(f"stage '{self.stage.name}': the model returned no loss (are labels in the batch?)")
            scale = micro.units / total_units * engine.world_size if total_units else 0.0
            engine.backward(loss.float() * scale)
        return float(loss.detach().float()) * micro.units

    # -- data quality ----------------------------------------------------------------
    def _gathered_examples(self, ledger: Ledger) -> list[str]:
        merged: list[str] = []
        for examples in self.engine.gather_objects(list(self.local_examples)):
            for e in examples or []:
                if e not in merged:
                    merged.append(e)
        return merged[: ledger.max_examples]

    def _check_data(self, ledger: Ledger, final: bool) -> None:
        limit, min_seen = float(self.data_cfg.max_bad_fraction), int(self.data_cfg.bad_check_after)
        if ledger.seen and ledger.fraction > limit and (final or ledger.seen >= min_seen):
            ledger.examples = self._gathered_examples(ledger)
            self.log(ledger.report())
            ledger.check(limit, min_seen, final=True)

    # -- evaluation ---------------------------------------------------------------------
    def _has_eval_data(self) -> bool:
        return bool(self.data_cfg.eval) or self.eval_samples is not None

    @torch.no_grad()
    def _eval_loss(self) -> dict[str, float]:
        cfg, stage, engine = self.cfg, self.stage, self.engine
        sources: list[RecordSource] = []
        if self.eval_samples is not None:
            sources.append(in_memory_source(self.eval_samples, name="eval_samples"))
        sources += [open_source(src, bool(cfg.data.streaming)) for src in cfg.data.eval]
        ctx = stage.make_context(self.stack, cfg)
        if ctx.transform is not None:
            ctx.transform = self.stack.image_transform(train=False)
        producer = StepProducer(stage, ctx, sources, [1.0] * len(sources), seed=int(self.run.seed),
                                batch_size=int(self.run.batch_size), grad_accum=1, rank=engine.rank,
                                world_size=engine.world_size, shuffle=False)
        sized = all(s.sized for s in sources)
        batches = int(self.run.eval_batches)
        if sized:
            records = sum(len(s) for s in sources)
            batches = min(batches, max(1, math.ceil(records / (int(self.run.batch_size) * engine.world_size))))
        total = weighted = 0.0
        for i, data in enumerate(producer):
            if i >= batches:
                break
            micro = data.micro[0]
            batch = _to_device(micro.batch, engine.device)
            with engine.autocast():
                loss = stage.compute_loss(engine.forward, batch)
            sums = engine.all_reduce_sum([float(loss.float()) * micro.units, float(micro.units)])
            weighted += sums[0]
            total += sums[1]
        return {"loss": weighted / total} if total else {}

    def _evaluate(self, step: int, metrics: MetricsWriter | None) -> dict[str, Any]:
        self.stack.eval()
        try:
            values: dict[str, Any] = {}
            if self._has_eval_data():
                values.update(self._eval_loss())
            if self.eval_fn is not None:
                values.update(self.eval_fn(self.stack, step) or {})
        finally:
            self.stack.train()
        row = {"event": "eval", "step": step, "eval": values}
        if metrics is not None:
            metrics.write(row)
        if values:
            self.log(f"[{self.stage.name}] eval at step {step}: "
                     + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()))
        return row

    # -- checkpoints ----------------------------------------------------------------------
    def _save(self, step: int, data: StepData, ledger: Ledger) -> Path:
        engine, root = self.engine, self.folder / "checkpoints"
        final = root / ckpt.step_dir_name(step)
        tmp = root / (final.name + ".tmp")
        if engine.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        engine.barrier()
        extras = engine.save_state(tmp)
        tensors = engine.trainable_state()
        ckpt.save_rng(tmp / "rng", engine.rank)
        ledger.examples = self._gathered_examples(ledger)
        if engine.is_main:
            ckpt.save_tensors_atomic(tensors, tmp / "trainable.safetensors",
                                     metadata={"format": "mpm-trainable", "stage": self.stage.name, "step": str(step)})
            state = {"step": step, "data": data.state, "ledger": ledger.state(), "engine": extras,
                     "world_size": engine.world_size, "stage": self.stage.name,
                     "config": OmegaConf.to_container(self.cfg.run, resolve=True)}
            ckpt.write_json_atomic(tmp / "trainer_state.json", state)
        engine.barrier()
        if engine.is_main:
            ckpt.commit(tmp, final)
            ckpt.prune(root, int(self.run.keep_last))
            plot_loss_curve(self.folder / "metrics.jsonl", self.folder / "loss_curve.png",
                            f"{self.stage.name} ({Path(str(self.run.output_dir)).name})")
        engine.barrier()
        return final

    def _finish(self, result: TrainResult, ledger: Ledger, inherited: list[str], metrics: MetricsWriter | None) -> None:
        engine, log = self.engine, self.log
        self._check_data(ledger, final=True)
        ledger.examples = self._gathered_examples(ledger)
        result.data = ledger.summary()
        tensors = engine.trainable_state()
        params = dict(self.stack.named_parameters())
        buffers = dict(self.stack.named_buffers())
        keep = engine.full_tensors([(n, params[n]) for n in inherited if n in params and n not in tensors])
        keep.update({n: buffers[n].detach() for n in inherited if n in buffers and n not in tensors})
        if engine.is_main:
            log(ledger.report())
            if metrics is not None:
                metrics.write({"event": "end", "step": result.steps, "final_loss": result.final_loss,
                               "data": result.data, "exhausted": result.exhausted})
                metrics.close()
            summary = {"stage": self.stage.name, "steps": result.steps, "final_loss": result.final_loss,
                       "data": result.data, "trainable": self.trainable_specs,
                       "trainable_counts": {k: list(v) for k, v in result.trainable.items()},
                       "inherited": len(keep), "world_size": engine.world_size, "engine": engine.name}
            write_final(self.folder, {**keep, **tensors}, summary,
                        {"format": "mpm-trainable", "stage": self.stage.name, "step": str(result.steps)})
            plot_loss_curve(self.folder / "metrics.jsonl", self.folder / "loss_curve.png",
                            f"{self.stage.name} ({Path(str(self.run.output_dir)).name})")
            record_stage(Path(str(self.run.output_dir)), self.stage.name,
                         {"dir": self.folder.name, "steps": result.steps, "final_loss": result.final_loss})
            log(f"[{self.stage.name}] done: {result.steps} steps, final loss "
                f"{result.final_loss if result.final_loss is None else round(result.final_loss, 5)}; "
                f"weights in {self.folder / 'final'}")
        engine.barrier()


def train_stage(
    stack: Any,
    cfg: Any,
    train_samples: Iterable[Any] | None = None,
    eval_fn: EvalFn | None = None,
    progress: bool = True,
    *,
    eval_samples: Iterable[Any] | None = None,
    callbacks: Iterable[Callable[[int, dict[str, Any]], None]] = (),
) -> TrainResult:
    """Train ``stack`` in stage ``cfg.run.stage`` (``stages.<stage>`` overrides applied).

    ``cfg`` is a resolved config (``resolve_config``); only its ``run`` and
    ``data`` sections are needed, missing fields take their defaults.
    ``train_samples`` adds in-memory records (a sequence: many epochs; any
    iterable: streamed) in the formats of ``docs/data-formats.md``;
    ``eval_fn(stack, step) -> {name: value}`` runs every ``run.eval_every`` steps
    and at the end. ``callbacks`` get ``(step, metrics_row)`` after every step.
    """
    trainer = Trainer(stack, cfg, train_samples=train_samples, eval_fn=eval_fn, eval_samples=eval_samples,
                      progress=progress, callbacks=callbacks)
    try:
        return trainer.train()
    except KeyboardInterrupt:
        print("interrupted; continue with --resume (run.resume=true)", file=sys.stderr)
        raise
