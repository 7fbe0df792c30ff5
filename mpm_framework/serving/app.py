"""The FastAPI application: OpenAI routes, health, metrics, errors.

Every refusal is an OpenAI-style error body (``{"error": {...}}``) with a 4xx
status; an unexpected failure is a 500 whose body says nothing about the code
(the traceback goes to the server's log only).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import APIError, bad_request, error_body
from .scheduler import ChatJob, Completion, QueueFull, ShuttingDown
from .schemas import parse_chat_request, parse_image_request
from .service import Service

LOG = logging.getLogger("mpm.serve")
DISCONNECT_POLL_S = 0.2


def _error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _json_body(request: Request, limit: int) -> Any:
    """The parsed JSON body; refused past ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the request body is {declared} bytes, more than this server accepts ({limit})")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"the request body is more than this server accepts ({limit} bytes)")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise bad_request("the request body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON ({exc.__class__.__name__}: "
                          f"{str(exc)[:100]})") from None


class _Events:
    """Events from the decode thread, delivered into this request's event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def sink(self, kind: str, value: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))


def _usage(done: Completion) -> dict[str, int]:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}


def create_app(service: Service, ui: bool = False) -> FastAPI:
    """The app serving ``service``; ``ui`` mounts the Gradio demo at /ui."""
    options = service.options
    # a conversation may carry its image in several turns (base64: 4/3 of the bytes), plus text
    body_limit = 4 * (options.image_limits.max_bytes * 4 // 3) + 2**20

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if service.scheduler is not None:
            service.scheduler.start()
        yield
        # uvicorn has already waited (up to --grace) for open requests; cancel the rest
        if service.scheduler is not None:
            await run_in_threadpool(service.scheduler.stop, 0.0)

    app = FastAPI(title="MPM", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError) -> JSONResponse:
        service.metrics.inc("mpm_requests_rejected_total", status=str(exc.status))
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(bad_request(f"invalid request: {exc.errors()[0].get('msg', 'bad value')}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        LOG.exception("unexpected error")
        service.metrics.inc("mpm_requests_failed_total")
        return JSONResponse(error_body(500, "internal server error"), status_code=500)

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        path = request.url.path
        service.metrics.inc("mpm_http_requests_total")
        if options.api_key and path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), options.api_key):
                service.metrics.inc("mpm_requests_rejected_total", status="401")
                return _error_response(APIError(401, "invalid or missing API key (Authorization: Bearer KEY)",
                                                code="invalid_api_key"))
        try:
            return await call_next(request)
        except APIError as exc:  # raised outside a route (rare): still an OpenAI body
            return _error_response(exc)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": options.model_id, "chat": service.chat_stack is not None,
                "images": service.paint_stack is not None}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        scheduler = service.scheduler
        gauges = {
            "mpm_queue_depth": scheduler.queue_depth if scheduler else 0,
            "mpm_batch_rows": scheduler.running if scheduler else 0,
            "mpm_batch_occupancy": (scheduler.running / scheduler.max_batch) if scheduler else 0,
            "mpm_image_cache_bytes": service.cache.bytes,
            "mpm_image_cache_entries": len(service.cache),
        }
        return PlainTextResponse(service.metrics.render(gauges), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": options.model_id, "object": "model", "created": 0,
                                             "owned_by": "mpm"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        parsed = parse_chat_request(await _json_body(request, body_limit))
        prepared = await run_in_threadpool(service.prepare_chat, parsed)
        events = _Events()
        job = ChatJob(prepared.encoding, prepared.config, events.sink, prepared.image_key, prepared.pixels)
        try:
            service.scheduler.submit(job)
        except QueueFull:
            raise APIError(429, "the server is busy: the request queue is full, retry later",
                           code="rate_limit_exceeded",
                           headers={"Retry-After": str(service.scheduler.retry_after())}) from None
        except ShuttingDown:
            raise APIError(503, "the server is shutting down") from None
        service.metrics.inc("mpm_requests_total", endpoint="chat")
        created = int(time.time())
        if parsed.stream:
            include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
            return StreamingResponse(_stream(job, events, created, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        done = await _collect(request, job, events)
        return JSONResponse({
            "id": job.id, "object": "chat.completion", "created": created, "model": options.model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                         "finish_reason": done.finish_reason, "logprobs": None}],
            "usage": _usage(done),
        })

    async def _collect(request: Request, job: ChatJob, events: _Events) -> Completion:
        """Wait for the answer; a client that goes away cancels its request."""
        try:
            while True:
                try:
                    kind, value = await asyncio.wait_for(events.queue.get(), DISCONNECT_POLL_S)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        job.cancel()
                        raise APIError(499, "client disconnected") from None
                    continue
                if kind == "done":
                    return value
                if kind == "error":
                    raise APIError(503, value)
        except asyncio.CancelledError:
            job.cancel()
            raise

    def _chunk(job: ChatJob, created: int, delta: dict[str, Any], finish: str | None) -> str:
        body = {"id": job.id, "object": "chat.completion.chunk", "created": created, "model": options.model_id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def _stream(job: ChatJob, events: _Events, created: int, include_usage: bool) -> AsyncIterator[str]:
        finished = False
        try:
            yield _chunk(job, created, {"role": "assistant", "content": ""}, None)
            while True:
                kind, value = await events.queue.get()
                if kind == "piece":
                    yield _chunk(job, created, {"content": value}, None)
                elif kind == "error":
                    yield f"data: {json.dumps(error_body(503, value))}\n\n"
                    break
                else:
                    finished = True
                    yield _chunk(job, created, {}, value.finish_reason)
                    if include_usage:
                        body = {"id": job.id, "object": "chat.completion.chunk", "created": created,
                                "model": options.model_id, "choices": [], "usage": _usage(value)}
                        yield f"data: {json.dumps(body)}\n\n"
                    break
            yield "data: [DONE]\n\n"
        finally:
            if not finished:  # the client went away (or the server is stopping): free the batch row
                job.cancel()

    @app.post("/v1/images/generations")
    async def images(request: Request) -> JSONResponse:
        parsed = parse_image_request(await _json_body(request, body_limit))
        if service.paint_stack is None:
            raise APIError(404, "this server has no image decoder", code="model_not_found")
        if parsed.model is not None:
            service.check_model(parsed.model)
        service.metrics.inc("mpm_requests_total", endpoint="images")
        images_b64 = await run_in_threadpool(service.paint, parsed)
        return JSONResponse({"created": int(time.time()), "data": [{"b64_json": b} for b in images_b64]})

    if ui:
        from .ui import mount_ui

        app = mount_ui(app, service)
    return app
