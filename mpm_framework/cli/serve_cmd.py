"""``mpm serve`` / ``mpm compose ... serve``: an OpenAI-compatible HTTP server."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MPMError
from ..security import trust_remote_code_option

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("serve")
@click.option("--checkpoint", "checkpoints", multiple=True, type=click.Path(file_okay=False),
              help="A run folder (from train or mpm demo): a chat run, a paint run, or one of each (repeat).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback (e.g. 0.0.0.0) exposes the model to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--api-key", envvar="MPM_API_KEY", default=None,
              help="Require 'Authorization: Bearer KEY' on /v1/ routes (or set MPM_API_KEY).")
@click.option("--model-name", default=None, help="The model id clients pass (default: the run folder's name).")
@click.option("--allow-dir", "allow_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Accept image_url paths (or file:// URLs) under this folder (repeatable). Default: none.")
@click.option("--max-image-bytes", type=click.IntRange(1), default=20 * 1024 * 1024, show_default=True)
@click.option("--max-image-pixels", type=click.IntRange(1), default=None,
              help="Refuse images declaring more pixels (decompression bombs; default: MPM_MAX_IMAGE_PIXELS "
                   "or PIL's limit, about 89 M).")
@click.option("--max-batch", type=click.IntRange(1), default=16, show_default=True,
              help="Requests decoded together (continuous batching).")
@click.option("--max-queue", type=click.IntRange(1), default=64, show_default=True,
              help="Requests waiting for a batch row; beyond it: 429 with Retry-After.")
@click.option("--max-tokens", "default_max_tokens", type=click.IntRange(1), default=None,
              help="Answer length when a request gives no max_tokens. Default: the model's own default "
                   "(its generation_defaults; cpm-bee: 512), else 256.")
@click.option("--cache-mb", type=click.IntRange(1), default=256, show_default=True,
              help="Memory for cached image encodings (least recently used dropped first).")
@click.option("--grace", type=click.FloatRange(0), default=30.0, show_default=True,
              help="On SIGTERM: seconds to finish requests in flight before stopping.")
@click.option("--blocklist", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Refuse image prompts containing any term of this file (one per line).")
@click.option("--ui", is_flag=True, help="Also serve the Gradio web demo at /ui.")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch CPU threads (default: torch's).")
@click.option("--device", default=None, help="Run on this torch device (e.g. cuda).")
@click.option("--max-gpu-memory", default=None, metavar="SIZE",
              help="A chat model larger than the GPU: at most SIZE (e.g. 5GiB) of it on the GPU, whole layers, "
                   "the rest kept in CPU memory and run on the GPU by accelerate (as chat --max-gpu-memory). "
                   "Needs CUDA.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="info", show_default=True)
@trust_remote_code_option
@click.pass_obj
def serve(spec, checkpoints, host, port, api_key, model_name, allow_dirs, max_image_bytes, max_image_pixels,
          max_batch, max_queue, default_max_tokens, cache_mb, grace, blocklist, ui, threads, device,
          max_gpu_memory, log_level) -> None:
    """Serve a model over HTTP with the OpenAI API (chat completions with images,
    image generations), /health, /metrics and optionally a web demo (--ui).

    \b
    Examples:
      mpm serve --checkpoint runs/demo/seed0/conditions/mpm --ui
      mpm compose --llm llama --vision clip --decoder unet serve --port 8001
    """
    try:
        import uvicorn  # noqa: F401

        from ..serving import app as _app  # noqa: F401  (fastapi)
    except ImportError as exc:
        raise MPMError(f"serving needs the 'serve' extra: pip install 'mpm-framework[serve]' ({exc})") from None
    if not checkpoints and spec is None:
        raise MPMError("give --checkpoint RUN_DIR (a run folder from train or mpm demo), "
                       "or compose a stack: mpm compose --llm ... --vision ... serve")
    if host not in LOOPBACK and not api_key:
        click.echo(f"warning: listening on {host} without --api-key: anyone who can reach this machine "
                   "can use the model", err=True)
    from ..serving.images import ImageLimits
    from ..serving.service import ServeOptions, Service, load_stacks

    filters = []
    if blocklist:
        from ..paint.filters import BlocklistFilter

        filters.append(BlocklistFilter.from_file(blocklist))
    if threads:
        import torch

        torch.set_num_threads(threads)
    if max_gpu_memory is None:
        chat_stack, paint_stack = load_stacks(list(checkpoints), spec, device)
    else:
        chat_stack, paint_stack = _load_offloaded(checkpoints, spec, device, max_gpu_memory)
    name = model_name or (Path(checkpoints[0]).resolve().name if checkpoints else "mpm")
    options = ServeOptions(
        model_id=name, max_batch=max_batch, max_queue=max_queue, default_max_tokens=default_max_tokens,
        image_limits=ImageLimits(max_image_bytes, max_image_pixels, tuple(Path(d).resolve() for d in allow_dirs)),
        cache_bytes=cache_mb * 1024 * 1024, api_key=api_key, grace=grace, prompt_filters=filters)
    service = Service(chat_stack, paint_stack, options)
    run_server(service, host, port, ui=ui, log_level=log_level)


def _load_offloaded(checkpoints, spec, device: str | None, max_gpu_memory: str):
    """The stacks with the chat stack's layers placed across the GPU and CPU memory
    (``inference.offload``); a paint stack goes to ``device`` whole."""
    from ..inference.loading import _place
    from ..inference.offload import check_can_offload, describe, offload_stack
    from ..planning.hardware import parse_size
    from ..serving.service import load_stacks

    budget = parse_size(max_gpu_memory)
    check_can_offload(device)  # before anything is loaded
    chat_stack, paint_stack = load_stacks(list(checkpoints), spec, None)
    if chat_stack is None:
        raise MPMError("--max-gpu-memory places a chat model; this server has none (no --vision, no chat run)")
    click.echo(describe(offload_stack(chat_stack, budget, device)), err=True)
    return chat_stack, _place(paint_stack, device) if paint_stack is not None else None


def run_server(service, host: str, port: int, ui: bool = False, log_level: str = "info") -> None:
    """Run until SIGINT/SIGTERM; uvicorn stops accepting, then waits up to
    ``--grace`` seconds for requests in flight."""
    import uvicorn

    from ..serving.app import create_app

    app = create_app(service, ui=ui)
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    served = [x for x, on in (("chat", service.chat_stack), ("images", service.paint_stack)) if on is not None]
    click.echo(f"mpm serve: model '{service.options.model_id}' ({', '.join(served)}) on {where}/v1"
               + (f", web demo on {where}/ui" if ui else ""), err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=service.options.grace)
    _graceful_server_class()(config).run()


def _graceful_server_class():
    import contextlib
    import signal
    import threading

    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, except that a stop by SIGTERM/SIGINT ends with exit
        status 0 (uvicorn re-raises the signal once shut down, so a clean,
        graceful stop would look like a crash to a supervisor)."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return GracefulServer

