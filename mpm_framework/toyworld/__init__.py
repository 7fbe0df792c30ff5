"""Compatibility package: only :mod:`.scene` remains here.

The toy world (scenes rendered, corpora, ``mpm demo``) is the ``mpm-toyworld``
plugin (``plugins/mpm-toyworld``, package ``mpm_toyworld``). Its vocabulary --
the scene types language packs realise -- belongs to the toy-grammar contract
(:mod:`mpm_framework.contracts.toy_grammar`); ``mpm_framework.toyworld.scene``
re-exports it so packs written against that path keep working.
"""
