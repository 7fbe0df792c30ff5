"""``mpm plan RECIPE``: know before you launch whether it fits."""

from __future__ import annotations

import click

from ..security import trust_remote_code_option


@click.command("plan", context_settings={"ignore_unknown_options": False})
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--gpus", default=1, show_default=True, help="GPUs per node.")
@click.option("--nodes", default=1, show_default=True, help="Number of nodes.")
@click.option("--gpu-mem", default="80GB", show_default=True, help="Memory per GPU (80GB, 24GiB, ...).")
@click.option("--zero", type=click.IntRange(0, 3), default=None,
              help="ZeRO stage (default: the recipe's run.zero_stage; 0 = plain DDP).")
@click.option("--offload", is_flag=True, default=None, help="ZeRO-Offload optimizer state (and ZeRO-3 params) to CPU.")
@click.option("--stage", default=None, help="Stage to plan (default: the recipe's run.stage).")
@click.option("--micro-batch", type=int, default=None, help="Micro-batch per GPU (default: run.batch_size).")
@click.option("--seq-len", type=int, default=None, help="Sequence length (default: data.max_length).")
@click.option("--tflops", default=120.0, show_default=True,
              help="Assumed achieved TFLOP/s per GPU for the time estimate (~40% of an A100's bf16 peak).")
@click.option("--measure", is_flag=True, help="Also run one real training step on this CPU and show its peak memory.")
@click.option("--inference", is_flag=True,
              help="Plan inference instead: memory of each dtype x int8 x offload choice.")
@click.option("--max-gpu-memory", default=None,
              help="With --inference: plan offload, at most this much on the GPU (e.g. 5GiB); the rest in CPU memory.")
@click.option("--context", type=int, default=2048, show_default=True,
              help="With --inference: tokens of context the KV cache holds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@trust_remote_code_option
def plan(recipe, overrides, gpus, nodes, gpu_mem, zero, offload, stage, micro_batch, seq_len, tflops,
         measure, inference, max_gpu_memory, context, as_json) -> None:
    """Count parameters exactly (meta device, no weights) and estimate per-GPU
    memory and step time for RECIPE on the given hardware; say whether it fits
    and what would make it fit.

    \b
    Examples:
      mpm plan examples/recipes/viscpm_chat_balance.yaml --gpus 8 --gpu-mem 80GB --zero 2
      mpm plan examples/recipes/viscpm_chat_balance.yaml --stage instruct --zero 3 --offload
      mpm plan examples/recipes/viscpm_chat_balance.yaml --inference --gpu-mem 24GB --max-gpu-memory 5GiB
    """
    import json

    if inference:
        _plan_inference(recipe, overrides, gpu_mem, max_gpu_memory, context, as_json)
        return

    from ..config.loading import resolve_config
    from ..planning.estimate import format_plan, make_plan
    from ..planning.hardware import Hardware, parse_size
    from ..training.recipes import stage_config

    cfg = stage_config(resolve_config(recipe=recipe, overrides=list(overrides)), stage)
    hardware = Hardware(
        gpus_per_node=gpus, nodes=nodes, gpu_memory=parse_size(gpu_mem),
        zero_stage=cfg.run.zero_stage if zero is None else zero,
        offload=cfg.run.offload if offload is None else offload,
    )
    result = make_plan(cfg, hardware, micro_batch=micro_batch, seq_len=seq_len,
                       achieved_tflops=tflops)
    measured = None
    if measure:
        from ..planning.measure import measure_in_subprocess

        measured = measure_in_subprocess(cfg, result.micro_batch, result.seq_len)
    if as_json:
        click.echo(json.dumps({
            "stage": result.stage, "counts": result.counts, "weights": result.weights,
            "grads": result.grads, "optimizer": result.optimizer, "activations": result.activations, "working": result.working,
            "activation_method": result.activation_method, "gpu_bytes": result.gpu_bytes,
            "fits": result.fits, "tokens_per_step": result.tokens_per_step,
            "step_seconds": result.step_seconds, "measured": measured,
            "suggestions": [{"change": s, "gpu_bytes": b, "fits": f} for s, b, f in result.suggestions],
        }, indent=2))
        return
    click.echo(format_plan(result))
    if measured:
        est = result.optimizer + result.step_bytes
        click.echo(f"\nmeasured on this CPU (fp32, one steady-state step): {measured['step_bytes'] / 2**20:.1f} "
                   f"MiB above the weights (optimizer state + step peak); planned {est / 2**20:.1f} MiB "
                   f"({est / max(measured['step_bytes'], 1):.2f}x)")


def _plan_inference(recipe, overrides, gpu_mem, max_gpu_memory, context, as_json) -> None:
    import dataclasses
    import json

    from ..composition import build_stack
    from ..config.loading import resolve_config
    from ..planning.hardware import parse_size
    from ..planning.inference import format_inference_plan, plan_inference

    cfg = resolve_config(recipe=recipe, overrides=list(overrides))
    stack = build_stack(cfg, meta=True)
    result = plan_inference(stack, parse_size(gpu_mem), parse_size(max_gpu_memory) if max_gpu_memory else None,
                            context_tokens=context)
    if as_json:
        click.echo(json.dumps({
            "splits": {k: dataclasses.asdict(v) for k, v in result.splits.items()},
            "gpu_memory": result.gpu_memory, "max_gpu_memory": result.max_gpu_memory,
            "context_tokens": result.context_tokens, "kv_bytes_per_token": result.kv_bytes_per_token,
            "choices": [{**dataclasses.asdict(c), "label": c.label} for c in result.choices],
        }, indent=2))
        return
    click.echo(format_inference_plan(result))
