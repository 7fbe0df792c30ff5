"""``mpm compose ... chat``: one answer, or an interactive multi-turn chat."""

from __future__ import annotations

from typing import Any

import click

from ..errors import MPMError
from ..security import trust_remote_code_option

CHAT_HELP = """\
/image PATH   talk about another image (starts a new conversation)
/reset        forget the conversation (keep the image)
/quit         leave"""


MODEL_DEFAULT = "the model's generation_defaults, else"


def generation_options(func):
    """Decoding options shared by ``chat`` and ``eval``. Every default is None
    ("not set"): an option the user leaves out takes the LLM's
    ``generation_defaults`` (VisCPM's beam 3, penalty 1.1, ...), then
    GenerationConfig's default; the help names both."""
    options = [
        click.option("--max-new-tokens", type=int, default=None,
                     help=f"Longest answer in tokens. Default: {MODEL_DEFAULT} 128."),
        click.option("--beams", "num_beams", type=int, default=None,
                     help=f"Beam search width. Default: {MODEL_DEFAULT} 1 (VisCPM's cpm-bee: 3)."),
        click.option("--sample/--greedy", "do_sample", default=None,
                     help=f"Sample instead of greedy/beam. Default: {MODEL_DEFAULT} greedy."),
        click.option("--temperature", type=float, default=None,
                     help=f"Sampling temperature. Default: {MODEL_DEFAULT} 1.0."),
        click.option("--beam-temperature", type=float, default=None,
                     help=f"Beam search divides logits by this. Default: {MODEL_DEFAULT} 1.0 (cpm-bee: 0.7)."),
        click.option("--top-k", type=int, default=None,
                     help=f"Sample among the k most likely tokens (0: all). Default: {MODEL_DEFAULT} 0."),
        click.option("--top-p", type=float, default=None, help=f"Nucleus sampling mass. Default: {MODEL_DEFAULT} 1.0."),
        click.option("--repetition-penalty", type=float, default=None,
                     help=f"> 1 discourages repeats. Default: {MODEL_DEFAULT} 1.0 (cpm-bee: 1.1)."),
        click.option("--repetition-scope", type=click.Choice(["all", "generated"]), default=None,
                     help="Tokens the repetition penalty looks at: the prompt and the answer (all), or the "
                          f"answer only (generated). Default: {MODEL_DEFAULT} all (cpm-bee: generated)."),
        click.option("--length-penalty", type=float, default=None,
                     help=f"Beam score exponent on the length. Default: {MODEL_DEFAULT} 1.0 (cpm-bee: 3)."),
        click.option("--stop", "stop_strings", multiple=True, help="Stop when the answer contains this (repeatable)."),
        click.option("--seed", type=int, default=None, help="Sampling seed."),
        click.option("--device", default=None, help="Run on this torch device (e.g. cuda, cuda:1)."),
        click.option("--checkpoint", type=click.Path(file_okay=False), default=None,
                     help="A training run directory: its saved config and weights replace the composed stack."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


GENERATION_KEYS = ("max_new_tokens", "num_beams", "do_sample", "temperature", "beam_temperature", "top_k",
                   "top_p", "repetition_penalty", "repetition_scope", "length_penalty", "stop_strings", "seed")


def generation_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The decoding options the user set; None for the ones left to the model."""
    kwargs = {k: options[k] for k in GENERATION_KEYS}
    kwargs["stop_strings"] = tuple(kwargs["stop_strings"]) or None
    from ..inference.generation import GenerationConfig

    GenerationConfig.from_kwargs(**kwargs)  # validate what was given before any model is built
    return kwargs


def _ui_pack(spec, stack):
    """The pack whose phrases the chat speaks: the last --lang, else English."""
    languages = getattr(stack, "languages", {}) or {}
    for code in reversed(list(getattr(spec, "lang", None) or [])):
        if code in languages:
            return languages[code]
    return languages.get("en") or next(iter(languages.values()), None)


def _phrase(pack, key: str, default: str, **values: str) -> str:
    text = (getattr(pack, "phrases", None) or {}).get(key) or default
    try:
        return text.format(**values)
    except (KeyError, IndexError):
        return default.format(**values)


def _answer(stack, image, question: str, history, stream: bool, generation: dict[str, Any]):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        history = _answer_once(stack, image, question, history, stream, generation)
    for warning in caught:  # e.g. the oldest turns dropped to fit the context window
        click.echo(f"warning: {warning.message}", err=True)
    return history


def _answer_once(stack, image, question: str, history, stream: bool, generation: dict[str, Any]):
    if not stream:
        answer, history = stack.chat(image, question, history=history, **generation)
        click.echo(answer)
        return history
    chat_stream = stack.stream_chat(image, question, history=history, **generation)
    for piece in chat_stream:
        click.echo(piece, nl=False)
    click.echo()
    return chat_stream.history


def _interactive(stack, image: str | None, stream: bool, generation: dict[str, Any], pack) -> None:
    click.echo(_phrase(pack, "chat_welcome", "Chatting about {image}.", image=image or "no image"))
    click.echo(_phrase(pack, "chat_exit_hint", "Type /quit to leave.") + " /help")
    user = _phrase(pack, "user", "User")
    history = None
    while True:
        try:
            line = click.prompt(user, prompt_suffix="> ", default="", show_default=False)
        except (click.Abort, EOFError):
            line = "/quit"
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            command, _, argument = line.partition(" ")
            if command in ("/quit", "/exit", "/q"):
                click.echo(_phrase(pack, "chat_goodbye", "Goodbye."))
                return
            if command == "/reset":
                history = None
                click.echo("(conversation reset)")
            elif command == "/image":
                from pathlib import Path

                path = argument.strip()
                if not path or not Path(path).is_file():
                    click.echo(f"Error: image not found: {path or '(no path given)'}", err=True)
                    continue
                image, history = path, None
                click.echo(_phrase(pack, "chat_welcome", "Chatting about {image}.", image=image))
            elif command == "/help":
                click.echo(CHAT_HELP)
            else:
                click.echo(f"Unknown command {command}.\n{CHAT_HELP}", err=True)
            continue
        try:
            history = _answer(stack, image, line, history, stream, generation)
        except MPMError as exc:
            click.echo(f"Error: {exc}", err=True)


@click.command("chat")
@click.argument("question", required=False)
@click.option("--image", type=click.Path(dir_okay=False), default=None, help="The image to talk about.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print the answer as it is generated.")
@click.option("--truncate-history", is_flag=True,
              help="When the conversation outgrows the context window, drop its oldest turns (with a warning) "
                   "instead of stopping with an error.")
@click.option("--max-gpu-memory", default=None, metavar="SIZE",
              help="A GPU smaller than the model: at most SIZE (e.g. 5GiB) on the GPU, whole layers, the rest "
                   "kept in CPU memory and run on the GPU by accelerate (what mpm plan --inference "
                   "--max-gpu-memory shows). Needs CUDA.")
@generation_options
@trust_remote_code_option
@click.pass_obj
def chat(spec, question: str | None, image: str | None, stream: bool, truncate_history: bool,
         max_gpu_memory: str | None, **options: Any) -> None:
    """Chat with the composed stack about an image.

    \b
    With a QUESTION: print one answer and exit, e.g.
      mpm compose --llm llama --vision clip chat --image cat.jpg "这张图片里有什么？"
    Without: an interactive multi-turn chat (/image PATH, /reset, /quit).
    --checkpoint RUN_DIR loads a trained run with its saved config.
    """
    from pathlib import Path

    generation = generation_kwargs(options)
    generation["truncate_history"] = truncate_history  # a chat option, not a decoding one
    if image is not None and not Path(image).is_file():
        raise MPMError(f"image not found: {image}")
    from ..inference.loading import load_chat_stack

    if max_gpu_memory is None:
        stack = load_chat_stack(spec, checkpoint=options["checkpoint"], device=options["device"])
    else:
        from ..inference.offload import check_can_offload, describe, offload_stack
        from ..planning.hardware import parse_size

        budget = parse_size(max_gpu_memory)
        check_can_offload(options["device"])  # before anything is loaded
        stack = load_chat_stack(spec, checkpoint=options["checkpoint"])
        click.echo(describe(offload_stack(stack, budget, options["device"])), err=True)
    if question is not None:
        _answer(stack, image, question, None, stream, generation)
        return
    _interactive(stack, image, stream, generation, _ui_pack(spec, stack))
