"""``mpm serve``: a trained stack as an OpenAI-compatible HTTP service.

Modules, one concept each: ``errors`` (OpenAI-style error bodies), ``schemas``
(request validation), ``images`` (image URLs -> pixels under limits, the
encoding cache), ``messages`` (OpenAI messages -> MPM turns), ``scheduler``
(continuous batching over the PivotLLM contract), ``metrics`` (Prometheus
text), ``service`` (the loaded stacks and what a request turns into),
``app`` (the FastAPI routes), ``ui`` (the Gradio demo at /ui).
FastAPI, uvicorn and Gradio are imported only here (``pip install
mpm-framework[serve]``).
"""
