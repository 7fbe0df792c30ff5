"""Registration only. This module is imported by ``mpm plugins list``, so it
must not import torch, stanza or even the pack itself: the factory is an import
string, resolved when a stack is built."""

from mpm_framework.hookspecs import hookimpl


@hookimpl
def mpm_register_languages(register):
    register("es", "mpm_lang_es.pack:SpanishPack", aliases=["spanish", "español", "espanol"],
             description="Spanish / Español")
