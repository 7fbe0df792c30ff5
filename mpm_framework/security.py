"""Untrusted files: a run folder, a recipe or a downloaded checkpoint is data, never code.

Two ways a file can run code when it is loaded, and the one switch for each:

**Code shipped with a model** (a Hugging Face checkpoint's ``auto_map`` naming a
``.py`` next to its ``config.json``). It runs only when the *current command line*
asks for it with ``--trust-remote-code`` (or Python code opts in explicitly). A
``trust_remote_code: true`` inside a config -- a run folder's ``config.yaml``, a
recipe, a ``key=value`` override -- is ignored with a warning, because whoever
wrote that file is not the person running the command.

* A command: decorate it with :func:`trust_remote_code_option` (one line, no
  change to its signature); it adds the ``--trust-remote-code`` flag, which grants
  remote code for that command's run only::

      @click.command("serve")
      @click.option("--checkpoint", ...)
      @trust_remote_code_option
      def serve(checkpoint, ...): ...

* Python: ``with trusting_remote_code(): stack = load_run(path)`` (or
  ``load_run(path, trust_remote_code=True)``).
* Worker processes a command starts: pass ``--trust-remote-code`` on when
  :func:`remote_code_trusted` (``training/launch.py`` does).
* Loaders that call ``from_pretrained``: pass ``trust_remote_code=
  allow_remote_code(source, local=..., config_value=cfg.trust_remote_code)``; it
  says False unless granted, warns when a config asked for it in vain, and when
  granted warns naming the ``.py`` files that will run.
* Configs read from a run folder: :func:`ignore_remote_code_settings` switches any
  ``trust_remote_code`` off with a warning naming the file.

**Pickles.** ``torch.load(weights_only=False)`` runs whatever a ``__reduce__`` says.
:func:`load_torch_file` reads with ``weights_only=True`` plus a short allow-list of
plain types and raises :class:`UnsafeFileError` naming the file otherwise;
:func:`weights_only_torch_loads` forces that on every ``torch.load`` a third-party
library makes inside a block (DeepSpeed's resume, see ``training/engines.py``).

Torch-free at import: ``mpm --help`` imports this module through the CLI.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import MPMError

FLAG = "--trust-remote-code"
SETTING = "trust_remote_code"


class RemoteCodeWarning(UserWarning):
    """Code shipped with a model will run, or a config asked for it and was ignored."""


class UnsafeFileError(MPMError):
    """A file holds pickled objects that could run code when loaded."""


# -- code shipped with a model ---------------------------------------------------------------------

# Process-wide on purpose: a grant covers every loader the command reaches, in any thread
# (a server's worker threads included); the context manager restores the previous value.
_granted = False


def remote_code_trusted() -> bool:
    """Whether the running command asked for ``--trust-remote-code``."""
    return _granted


@contextlib.contextmanager
def trusting_remote_code(enabled: bool = True) -> Iterator[None]:
    """Grant (or, with ``enabled=False``, withhold) remote code inside the block."""
    global _granted
    before = _granted
    _granted = bool(enabled)
    try:
        yield
    finally:
        _granted = before


def trust_remote_code_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Click decorator: adds the ``--trust-remote-code`` flag, which grants remote code
    for the rest of the command's run. The command's signature does not change (the
    flag is not passed to it); read :func:`remote_code_trusted` where needed."""
    import click

    def grant(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            global _granted
            before, _granted = _granted, True

            def restore() -> None:
                global _granted
                _granted = before

            ctx.call_on_close(restore)
        return value

    return click.option(
        FLAG, is_flag=True, expose_value=False, callback=grant,
        help="Run Python code shipped with a model checkpoint (its config.json auto_map .py files). Only "
             "for checkpoints whose authors you trust; a config file or run folder cannot switch this on.",
    )(command)


def remote_code_files(folder: str | Path) -> list[str]:
    """The code a local Hugging Face checkpoint folder would run: its ``.py`` files
    named by ``auto_map`` in config.json / tokenizer_config.json / processor files
    (``repo--module.Class`` entries name code from another hub repository)."""
    root = Path(folder)
    found: list[str] = []
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json"):
        try:
            data = json.loads((root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        auto_map = data.get("auto_map") if isinstance(data, dict) else None
        if not isinstance(auto_map, dict):
            continue
        for ref in _flatten(auto_map.values()):
            repo, _, dotted = ref.rpartition("--")
            module = dotted.rsplit(".", 1)[0].replace(".", "/") + ".py"
            where = f"{repo}:{module} (hub repository)" if repo else str(root / module)
            if where not in found:
                found.append(where)
    return found


def _flatten(values: Iterable[Any]) -> Iterator[str]:
    for v in values:
        if isinstance(v, str):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _flatten(v)


def allow_remote_code(source: str | Path, *, local: bool, config_value: Any = False,
                      setting: str = f"model.llm.{SETTING}") -> bool:
    """The ``trust_remote_code`` a loader passes to ``from_pretrained(source)``.

    False unless the command was given ``--trust-remote-code``; a config asking for
    it (``config_value``) is then ignored with a warning. When granted, warns naming
    the files that will run (a hub id: the repository, whose code is not known yet)."""
    if not remote_code_trusted():
        if config_value:
            warnings.warn(
                f"{setting}=true in the config is ignored for {source}: code shipped with a checkpoint "
                f"runs only when the command line asks for it ({FLAG})", RemoteCodeWarning, stacklevel=2)
        return False
    if local:
        files = remote_code_files(source)
        if files:
            warnings.warn(f"{FLAG}: running code shipped with {source}: {', '.join(files)}",
                          RemoteCodeWarning, stacklevel=2)
    else:
        warnings.warn(f"{FLAG}: code shipped with the hub repository {source} (its auto_map .py files) "
                      "may run", RemoteCodeWarning, stacklevel=2)
    return True


def ignore_remote_code_settings(cfg: Any, source: str | Path) -> list[str]:
    """Switch off every ``trust_remote_code`` set in ``cfg`` (a config read from
    ``source``, e.g. a run folder's config.yaml), warning with the file and keys.
    Returns the dotted keys that were switched off. Works on OmegaConf and dicts."""
    found: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        items = node.items() if hasattr(node, "items") else ()
        for key, value in list(items):
            if key == SETTING and value:
                node[key] = False
                found.append(prefix + str(key))
            elif hasattr(value, "items"):
                walk(value, f"{prefix}{key}.")
            elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
                for i, item in enumerate(value):
                    if hasattr(item, "items"):
                        walk(item, f"{prefix}{key}[{i}].")

    walk(cfg, "")
    if found:
        warnings.warn(f"{source} sets {', '.join(k + '=true' for k in found)}: ignored. A run folder or "
                      f"recipe cannot switch on code shipped with a checkpoint; pass {FLAG} on the command "
                      "line if you trust it", RemoteCodeWarning, stacklevel=2)
    return found


# -- pickles ------------------------------------------------------------------------------------------


def load_torch_file(path: Any, map_location: Any = None, allowed: Iterable[Any] = (), **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True)`` with ``allowed`` types added to torch's
    safe globals; a file that needs anything else raises :class:`UnsafeFileError`
    naming it (nothing in it has run). ``kwargs``: ``mmap`` and the like."""
    import pickle

    from torch import serialization

    kwargs = {k: v for k, v in kwargs.items() if k not in ("weights_only", "pickle_module")}
    name = getattr(path, "name", path)
    try:
        with serialization.safe_globals(list(allowed)):
            # serialization.load, not torch.load: the latter may be the guard below.
            return serialization.load(path, map_location=map_location, weights_only=True, **kwargs)
    except pickle.UnpicklingError as exc:
        # Name what the file wanted (torch's own advice -- allow-list it -- is the wrong one here).
        wanted = re.search(r"GLOBAL ([\w.]+)", str(exc))
        detail = f" (it asks for {wanted.group(1)})" if wanted else ""
        raise UnsafeFileError(
            f"refusing to load {name}: it holds pickled objects other than tensors and plain data, which "
            f"could run code when loaded{detail}. This file was changed or written by something else; "
            "do not load it unless you know where it came from"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MPMError(f"cannot read {name}: {first}") from None


@contextlib.contextmanager
def weights_only_torch_loads(allowed: Iterable[Any] = ()) -> Iterator[None]:
    """Inside the block every ``torch.load(...)`` -- including a library's own
    ``weights_only=False`` calls -- goes through :func:`load_torch_file`.

    For code we cannot change (DeepSpeed reads its checkpoint files with
    ``weights_only=False`` through its checkpoint engine and, on some paths, direct
    ``torch.load`` calls). Process-wide while active: use around a load on the main
    thread, not around long-running work."""
    import torch

    allowed = list(allowed)
    original = torch.load

    def load(f: Any, map_location: Any = None, *args: Any, **kwargs: Any) -> Any:
        return load_torch_file(f, map_location=map_location, allowed=allowed, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original
