"""Text-to-image through the pivot: sampling, safety hooks, reranking, the
``paint`` stage (the toy-world paint experiment is in the ``mpm-toyworld``
plugin: ``mpm_toyworld.paint_experiment``). Import from the modules
(``mpm_framework.paint.sampling``); this package root stays torch-free."""
