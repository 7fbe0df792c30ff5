"""The web demo in a real browser (Debian's chromium driven by playwright):
switch to German, upload an image, ask in German, watch the answer stream in;
paint in the paint tab. Screenshots are kept as artifacts (paths printed; under
$MPM_TEST_ARTIFACTS when set).

Without chromium or playwright the test skips, except with CI=true where a
missing browser is a failure (scripts/install.sh --dev installs it as root)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    chromium = shutil.which("chromium")
    if sync_playwright is None or chromium is None:
        missing = "playwright" if sync_playwright is None else "chromium (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser test needs {missing}; CI must install it (scripts/install.sh --dev)")
        pytest.skip(f"needs {missing}")
    return sync_playwright, chromium


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory, support):
    gradio = pytest.importorskip("gradio")
    assert int(gradio.__version__.split(".")[0]) >= 6
    log = tmp_path_factory.mktemp("serve-ui") / "server.log"
    proc = support.ServerProcess([*support.FULL_STACK, "serve", "--ui"], log)
    yield proc
    proc.stop()


def test_chat_and_paint_in_the_browser(ui_server, support, tmp_path):
    sync_playwright, chromium = _browser_or_skip()
    picture = tmp_path / "picture.png"
    picture.write_bytes(support.png_bytes(11, size=64))
    # artifacts: under the test's tmp dir, or MPM_TEST_ARTIFACTS when CI wants to keep them
    shots = Path(os.environ.get("MPM_TEST_ARTIFACTS") or tmp_path) / "serve-ui-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{ui_server.base}/ui/")
            page.wait_for_selector("#mpm-question textarea", timeout=60_000)
            assert "User" in page.locator("#mpm-question").inner_text()

            # the language selector lists the installed packs; German relabels the UI from its phrases
            page.locator("#mpm-language input").click()
            page.get_by_role("option", name="German (de)").click()
            page.wait_for_function("document.querySelector('#mpm-question').innerText.includes('Nutzer')",
                                   timeout=30_000)
            assert "Bild" in page.locator("#mpm-image").inner_text()

            page.locator("#mpm-image input[type=file]").set_input_files(str(picture))
            page.wait_for_selector("#mpm-image img", timeout=30_000)
            page.locator("#mpm-question textarea").fill("Was ist auf dem Bild?")
            page.locator("#mpm-send").click()
            # the answer streams into the chatbot: a bot message with text after the question
            page.wait_for_function(
                """() => { const bots = document.querySelectorAll('#mpm-chatbot .message.bot, '
                         + '#mpm-chatbot [data-testid="bot"]');
                         return bots.length > 0 && bots[bots.length - 1].innerText.trim().length > 0; }""",
                timeout=60_000)
            assert "Was ist auf dem Bild?" in page.locator("#mpm-chatbot").inner_text()
            page.screenshot(path=str(shots / "chat.png"), full_page=True)

            page.get_by_role("tab", name="Male").click()  # the German pack's paint phrase
            page.locator("#mpm-prompt textarea").fill("ein roter Kreis links")
            page.locator("#mpm-paint").click()
            page.wait_for_selector("#mpm-painted img", timeout=60_000)
            page.screenshot(path=str(shots / "paint.png"), full_page=True)
        finally:
            browser.close()
    for name in ("chat.png", "paint.png"):
        assert (shots / name).stat().st_size > 1000
    print(f"screenshots: {shots / 'chat.png'} {shots / 'paint.png'}")
