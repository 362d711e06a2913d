"""The web UI in headless Chromium (Playwright): drop a PDF, ask, watch the answer stream in,
open the cited passage, find the conversation again after a reload."""
from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import AppServer
from tests.retrieval.documents import filler_paragraphs, make_pdf

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

DROP_FILE = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "application/pdf" }));
  const zone = document.getElementById("drop-zone");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""

WATCH_ANSWER = """() => {
  window.answerStates = [];
  new MutationObserver(() => {
    const last = [...document.querySelectorAll(".message.assistant")].pop();
    if (last && last.classList.contains("streaming")) window.answerStates.push(last.textContent);
  }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
}"""


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()


def test_upload_ask_stream_and_open_the_citation(app: AppServer, key: str, page: Page, tmp_path: Path) -> None:
    pdf = make_pdf([filler_paragraphs(4), ["The monthly rent is 900 euros, due on the first day."], filler_paragraphs(9)[5:]])
    page.goto(app.url)
    page.fill("#api-key", key)
    page.click("#key-form button")
    expect(page.locator("#who")).to_contain_text("signed in as reader")

    page.evaluate(DROP_FILE, ["lease.pdf", base64.b64encode(pdf).decode()])
    expect(page.locator(".upload progress")).to_have_count(1)
    document = page.locator("#documents li", has_text="lease.pdf")
    expect(document.locator(".status")).to_have_text("ready", timeout=180_000)
    expect(document.locator("input[type=checkbox]")).to_be_checked()

    page.evaluate(WATCH_ANSWER)
    page.fill("#question", "What is the monthly rent?")
    page.click("#ask")
    citation = page.locator(".message.assistant a.citation")
    expect(citation).to_have_text("[lease.pdf, p. 2]", timeout=120_000)
    answer = page.locator(".message.assistant")
    expect(answer).to_contain_text("900 euros")
    expect(answer).not_to_have_class("streaming")
    states = page.evaluate("window.answerStates")
    partial = [s for s in dict.fromkeys(states) if s and s != answer.text_content()]
    assert len(partial) >= 2, states  # the text grew piece by piece while streaming

    citation.click()
    expect(page.locator("#passage")).to_be_visible()
    expect(page.locator("#passage-title")).to_have_text("lease.pdf, page 2")
    expect(page.locator("#passage-text")).to_contain_text("The monthly rent is 900 euros")
    page.screenshot(path=str(tmp_path / "answer.png"))

    page.reload()
    conversation = page.locator("#conversations li button", has_text="What is the monthly rent?")
    expect(conversation).to_have_count(1)
    conversation.click()
    expect(page.locator(".message.user")).to_have_text("What is the monthly rent?")
    expect(page.locator(".message.assistant a.citation")).to_have_text("[lease.pdf, p. 2]")


def test_a_bad_upload_shows_the_reason(app: AppServer, key: str, page: Page) -> None:
    page.goto(app.url)
    page.fill("#api-key", key)
    page.click("#key-form button")
    expect(page.locator("#who")).to_contain_text("signed in as")
    page.set_input_files("#file-input", files=[{"name": "broken.pdf", "mimeType": "application/pdf",
                                                "buffer": b"%PDF-1.7 this is not really a pdf"}])
    expect(page.locator(".upload.failed")).to_contain_text("broken.pdf: cannot use 'broken.pdf'")
    expect(page.locator("#documents li")).to_have_count(0)
