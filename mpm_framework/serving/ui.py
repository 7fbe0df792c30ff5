"""The web demo at /ui (Gradio): chat about an image with streamed answers, paint
when the server has a decoder, in any installed language.

The UI's labels are the chosen language pack's phrases (``user``, ``assistant``,
``image``, ``paint_prompt``, ``chat_welcome``), so a German pack gives a German
UI. Requests go through the same path as the HTTP API: the UI builds OpenAI
messages (the image as a data: URL) and hands them to the service, so its
limits, cache and continuous batching apply.
"""

from __future__ import annotations

import base64
import io
import os
import queue
import secrets
from typing import Any

from .schemas import parse_chat_request, parse_image_request
from .service import Service

FALLBACK = {"user": "User", "assistant": "Assistant", "image": "Image", "paint_prompt": "Paint: ",
            "chat_welcome": "Chatting about {image}.", "answer_in_language": ""}
UI_MAX_TOKENS = 64


def installed_packs(service: Service) -> dict[str, Any]:
    """Language packs to offer: the stack's own, then every installed one that loads."""
    packs = dict(service.languages)
    try:
        from ..composition import load_language
        from ..plugins import get_registry

        for code in get_registry().entries.get("language", {}):
            if code not in packs:
                try:
                    packs[code] = load_language(code)
                except Exception:  # a broken third-party pack must not take the demo down
                    continue
    except Exception:
        pass
    if "en" not in packs:
        from ..lang_en.pack import EnglishPack

        packs["en"] = EnglishPack()
    return packs


def phrase(pack: Any, key: str, **values: str) -> str:
    text = (getattr(pack, "phrases", None) or {}).get(key) or FALLBACK[key]
    try:
        return text.format(**values)
    except (KeyError, IndexError):
        return FALLBACK[key].format(**values)


def paint_label(pack: Any) -> str:
    """'Paint' in the pack's language: its paint prompt prefix without the colon."""
    return phrase(pack, "paint_prompt").strip().rstrip(":：").strip() or "Paint"


def _data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def stream_answer(service: Service, turns: list[tuple[str, str]], question: str, image: Any):
    """Yield the growing answer to ``question`` after the earlier ``turns``
    (user, assistant) about ``image`` (PIL or None), through the decode loop."""
    from .errors import APIError
    from .scheduler import ChatJob

    messages: list[dict[str, Any]] = []
    for i, (user, assistant) in enumerate([*turns, (question, None)]):
        content: Any = user
        if i == 0 and image is not None:
            content = [{"type": "image_url", "image_url": {"url": _data_url(image)}}, {"type": "text", "text": user}]
        messages.append({"role": "user", "content": content})
        if assistant is not None:
            messages.append({"role": "assistant", "content": assistant})
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    try:
        request = parse_chat_request({"model": service.options.model_id, "messages": messages,
                                      "temperature": 0, "max_tokens": UI_MAX_TOKENS})
        prepared = service.prepare_chat(request)
    except APIError as exc:
        yield f"⚠ {exc.message}"
        return
    job = ChatJob(prepared.encoding, prepared.config, lambda kind, value: events.put((kind, value)),
                  prepared.image_key, prepared.pixels)
    service.scheduler.submit(job)
    text = ""
    try:
        while True:
            kind, value = events.get()
            if kind == "piece":
                text += value
                yield text
            elif kind == "error":
                yield f"{text}\n⚠ {value}"
                return
            else:
                yield value.text
                return
    finally:
        job.cancel()  # a closed browser tab stops its generation


def build_ui(service: Service):
    import gradio as gr

    packs = installed_packs(service)
    codes = sorted(packs, key=lambda c: (c != "en", c))
    choices = [(f"{getattr(packs[c], 'name', c)} ({c})", c) for c in codes]
    has_chat, has_paint = service.chat_stack is not None, service.paint_stack is not None

    def labels(code: str):
        pack = packs.get(code, packs["en"])
        paint_word = paint_label(pack)
        return (gr.update(label=phrase(pack, "image")), gr.update(label=phrase(pack, "assistant")),
                gr.update(label=phrase(pack, "user"), placeholder=phrase(pack, "answer_in_language")),
                gr.update(label=paint_word), gr.update(value=paint_word), gr.update(label=paint_word),
                gr.update(value=phrase(pack, "chat_welcome", image=phrase(pack, "image"))))

    def respond(question: str, image: Any, history: list[dict[str, Any]], turns: list[tuple[str, str]]):
        question = (question or "").strip()
        if not question:
            yield history, turns, ""
            return
        shown = [*history, {"role": "user", "content": question}, {"role": "assistant", "content": ""}]
        answer = ""
        for answer in stream_answer(service, turns, question, image):
            shown[-1] = {"role": "assistant", "content": answer}
            yield shown, turns, ""
        yield shown, [*turns, (question, answer)], ""

    def new_image(_image: Any):
        return [], []  # another picture: another conversation

    def paint(prompt: str):
        from .errors import APIError

        try:
            b64 = service.paint(parse_image_request({"prompt": prompt or " ", "n": 1}))[0]
        except APIError as exc:
            raise gr.Error(exc.message) from None
        from PIL import Image

        image = Image.open(io.BytesIO(base64.b64decode(b64)))
        if image.width < 256:  # toy decoders paint a few dozen pixels: show them large, unsmoothed
            scale = 256 // image.width
            image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        return image

    en = packs["en"]
    with gr.Blocks(title="MPM") as demo:
        language = gr.Dropdown(choices=choices, value="en", label="Language", elem_id="mpm-language")
        with gr.Tab("Chat", visible=has_chat, elem_id="mpm-chat-tab"):
            welcome = gr.Markdown(phrase(en, "chat_welcome", image=phrase(en, "image")), elem_id="mpm-welcome")
            with gr.Row():
                image = gr.Image(type="pil", label=phrase(en, "image"), elem_id="mpm-image", height=256)
                with gr.Column(scale=2):
                    chatbot = gr.Chatbot(label=phrase(en, "assistant"), elem_id="mpm-chatbot", height=320)
                    question = gr.Textbox(label=phrase(en, "user"), placeholder=phrase(en, "answer_in_language"),
                                          elem_id="mpm-question", lines=1)
                    send = gr.Button("➤", elem_id="mpm-send", variant="primary")
            turns = gr.State([])
            if has_chat:
                for trigger in (send.click, question.submit):
                    trigger(respond, [question, image, chatbot, turns], [chatbot, turns, question])
                image.change(new_image, [image], [chatbot, turns])
        with gr.Tab(paint_label(en), visible=has_paint, elem_id="mpm-paint-tab") as paint_tab:
            prompt = gr.Textbox(label=paint_label(en), elem_id="mpm-prompt", lines=1)
            paint_button = gr.Button(paint_label(en), elem_id="mpm-paint", variant="primary")
            painted = gr.Image(type="pil", show_label=False, elem_id="mpm-painted", interactive=False, height=280)
            if has_paint:
                for trigger in (paint_button.click, prompt.submit):
                    trigger(paint, [prompt], [painted])
        language.change(labels, [language], [image, chatbot, question, prompt, paint_button, paint_tab, welcome])
    return demo


def mount_ui(app: Any, service: Service) -> Any:
    """Mount the demo at /ui; with --api-key the browser asks for it (any user name)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    auth = None
    if service.options.api_key:
        key = service.options.api_key

        def auth(_user: str, password: str) -> bool:
            return secrets.compare_digest(password, key)

    return gr.mount_gradio_app(app, build_ui(service), path="/ui", auth=auth, footer_links=[],
                               max_file_size=service.options.image_limits.max_bytes)
