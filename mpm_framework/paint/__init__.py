"""Text-to-image through the pivot: sampling, safety hooks, reranking, the
``paint`` stage and the toy-world paint experiment. Import from the modules
(``mpm_framework.paint.sampling``); this package root stays torch-free."""
