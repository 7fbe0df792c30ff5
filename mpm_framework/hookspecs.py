"""The extension points of MPM.

Every hook is namespaced ``mpm_`` and takes a ``register`` callback rather than
returning values, so the host can reject duplicates, attach aliases and record
which plugin registered what (the style of simonw/llm).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mpm")
hookimpl = pluggy.HookimplMarker("mpm")


# -- components ---------------------------------------------------------------
# Registration hooks are plain broadcasts: every plugin is called, results are
# ignored (firstresult=False) and the calls are not replayed for late plugins
# (historic=False) because the registry is rebuilt whenever plugins change.


@hookspec(firstresult=False, historic=False)
def mpm_register_llms(register) -> None:
    """Register pivot LLMs: ``register(name, factory, config=..., aliases=...)``."""


@hookspec(firstresult=False, historic=False)
def mpm_register_vision_encoders(register) -> None:
    """Register vision encoders (image -> feature tokens)."""


@hookspec(firstresult=False, historic=False)
def mpm_register_connectors(register) -> None:
    """Register connectors mapping vision features to LLM embeddings."""


@hookspec(firstresult=False, historic=False)
def mpm_register_image_decoders(register) -> None:
    """Register image decoders for text-to-image (paint) stacks."""


@hookspec(firstresult=False, historic=False)
def mpm_register_languages(register) -> None:
    """Register language packs: ``register(code, factory, aliases=[name, ...])``."""


@hookspec(firstresult=False, historic=False)
def mpm_register_toy_grammars(register) -> None:
    """Register toy-world grammars for language packs: ``register(code, factory,
    aliases=[...])``; ``factory(pack)`` returns a ``ToyGrammar`` (optional: a pack
    that defines the grammar methods itself needs no registration)."""


# -- checkpoint formats ------------------------------------------------------


@hookspec(firstresult=False, historic=False)
def mpm_register_formats(register) -> None:
    """Register checkpoint formats for ``mpm import`` / ``mpm export``:
    ``register(name, importer="pkg.mod:func", exporter="pkg.mod:func",
    description=..., aliases=[...])`` (either side may be omitted).

    ``importer(path, out, **options) -> Path`` turns a released checkpoint into a
    run folder that ``composition.load_stack`` loads; ``exporter(run_dir, out, **options) ->
    Path`` writes a run folder in the format. Both are import strings, resolved
    only when the command runs (``mpm --help`` stays torch-free)."""


# -- command line -------------------------------------------------------------


@hookspec(firstresult=False, historic=False)
def mpm_register_commands(cli) -> None:
    """Add click commands to the ``mpm`` group; imports heavy code lazily."""
