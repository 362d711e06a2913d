"""The web UI in real headless Chromium (Playwright) against a real app process and a scripted
model server, each flow at a desktop (1440 px) and a phone (390 px) width: the key screen, upload
with ingestion progress, a streamed Markdown answer, Stop, citations opening their passage,
rename/delete, reload, plain chat, failures, an agent run with an approval, an eval run.

Screenshots go to $SCREENSHOTS_DIR when it is set (docs/screenshots is made that way), else to
the test's temporary directory."""
from __future__ import annotations

import base64
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import AppServer, auth, new_user
from tests.retrieval.documents import filler_paragraphs, long_pdf, make_pdf

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
LEASE = make_pdf([filler_paragraphs(4), ["The monthly rent is 900 euros, due on the first day."], filler_paragraphs(9)[5:]])

if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.timeout(300)

DROP_FILE = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "application/pdf" }));
  const zone = document.getElementById("drop-zone");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""

WATCH = """([selector, attribute]) => {
  window.seen = [];
  new MutationObserver(() => {
    for (const node of document.querySelectorAll(selector)) window.seen.push(node[attribute]);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(params=list(VIEWPORTS))
def width(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def page(browser: Browser, width: str, app: AppServer) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORTS[width])
    # Nothing but the app: the UI and /docs must work offline.
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(app.url) else route.abort())
    page = context.new_page()
    yield page
    context.close()


class Shots:
    def __init__(self, page: Page, width: str, tmp_path: Path) -> None:
        self.page, self.width = page, width
        self.dir = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)

    def __call__(self, name: str, full_page: bool = False) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.dir / f"{name}-{self.width}.png"), full_page=full_page)


@pytest.fixture
def shot(page: Page, width: str, tmp_path: Path) -> Shots:
    return Shots(page, width, tmp_path)


def sign_in(page: Page, app: AppServer, key: str) -> None:
    page.goto(app.url)
    page.fill("#api-key", key)
    page.click("#key-form button")
    expect(page.locator("#who")).to_contain_text("reader")


def open_panel(page: Page, width: str) -> None:
    """On a phone the documents and conversations sit behind a button."""
    if width == "phone" and not page.locator("#side").is_visible():
        page.click("#panel-toggle")


def upload(page: Page, width: str, name: str, data: bytes) -> None:
    open_panel(page, width)
    page.evaluate(DROP_FILE, [name, base64.b64encode(data).decode()])
    document = page.locator("#documents li", has_text=name)
    expect(document.locator(".status")).to_have_text("ready", timeout=180_000)


def ask(page: Page, width: str, question: str) -> None:
    if width == "phone":
        page.locator("#chat").scroll_into_view_if_needed()
    page.fill("#question", question)
    page.click("#ask")


def test_the_first_screen_says_where_the_key_comes_from(app: AppServer, page: Page, width: str, shot: Shots) -> None:
    page.goto(app.url)
    welcome = page.locator("#welcome")
    expect(welcome).to_be_visible()
    expect(welcome).to_contain_text("make run")
    expect(welcome).to_contain_text("APP_ADMIN_KEY")
    expect(page.locator("#view-chat")).to_be_hidden()
    shot("welcome")
    page.fill("#api-key", "not-a-real-key-at-all")
    page.click("#key-form button")
    expect(page.locator("#key-error")).to_contain_text("invalid or revoked API key")
    page.fill("#api-key", new_user(app, "reader"))
    page.click("#key-form button")
    expect(page.locator("#chat-empty")).to_contain_text("Ask a question")
    expect(page.locator("#model")).to_contain_text("scripted-model · ready")
    expect(page.locator("#mode")).to_have_text("Chat with the model: no document selected")
    open_panel(page, width)
    expect(page.locator("#documents-empty")).to_contain_text("No documents yet")
    expect(page.locator("#conversations-empty")).to_be_visible()
    shot("empty")


def test_upload_progress_streamed_markdown_answer_and_citation(app: AppServer, page: Page, width: str,
                                                               shot: Shots) -> None:
    sign_in(page, app, new_user(app, "reader"))
    open_panel(page, width)
    page.evaluate(WATCH, ["#documents li .progress-text", "textContent"])
    page.evaluate(DROP_FILE, ["report.pdf", base64.b64encode(long_pdf()).decode()])
    report = page.locator("#documents li", has_text="report.pdf")
    expect(report.locator(".progress-text")).to_contain_text("/ 40 pages", timeout=60_000)
    shot("ingesting")
    expect(report.locator(".status")).to_have_text("ready", timeout=180_000)
    seen = [s for s in dict.fromkeys(page.evaluate("window.seen")) if s]
    assert any(s.endswith("chunks") and not s.startswith("40 / 40") for s in seen), seen  # progress before ready
    expect(report.locator("input[type=checkbox]")).to_be_checked()
    expect(report.locator(".doc-meta")).to_contain_text("40 pages")
    upload(page, width, "lease.pdf", LEASE)
    report.locator("input[type=checkbox]").uncheck()
    expect(page.locator("#mode")).to_have_text("Answering from 1 selected document, with citations")

    ask(page, width, "What is the monthly rent? Show it as code.")
    answer = page.locator(".message.assistant").last
    expect(answer.locator("a.citation")).to_have_text("[lease.pdf, p. 2]", timeout=60_000)
    expect(answer).not_to_have_class("streaming")
    expect(answer.locator("pre code")).to_have_text("print('rent', 900)")
    expect(answer.locator("strong")).to_have_text("all")
    answer.locator("a.citation").click()
    expect(page.locator("#passage")).to_be_visible()
    expect(page.locator("#passage-title")).to_have_text("lease.pdf, page 2")
    expect(page.locator("#passage-text")).to_contain_text("The monthly rent is 900 euros")
    shot("answer-passage")


def test_stop_keeps_the_answer_so_far(app: AppServer, page: Page, width: str, shot: Shots) -> None:
    sign_in(page, app, new_user(app, "reader"))
    page.evaluate(WATCH, [".message.assistant.streaming .body", "textContent"])
    ask(page, width, "Tell me slowly about rent")
    expect(page.locator("#ask")).to_have_text("Stop")
    answer = page.locator(".message.assistant").last
    expect(answer).to_contain_text("This answer takes a long time to write. " * 3, timeout=30_000)
    shot("streaming")
    grown = [s.strip() for s in dict.fromkeys(page.evaluate("window.seen")) if s.strip()]
    assert len(grown) >= 3 and all(a in b for a, b in zip(grown, grown[1:], strict=False)), grown  # piece by piece
    page.click("#ask")
    expect(page.locator("#ask")).to_have_text("Send")
    expect(answer.locator(".ending")).to_have_text("stopped")
    kept = answer.locator(".body").text_content()
    assert 0 < len(kept) < len("This answer takes a long time to write. " * 60)
    open_panel(page, width)
    conversation = page.locator("#conversations li", has_text="Tell me slowly about rent")
    expect(conversation).to_have_count(1)
    page.reload()
    open_panel(page, width)
    conversation.locator("button.title").click()
    saved = page.locator(".message.assistant .body")
    expect(saved).to_have_count(1)
    assert 0 < len(saved.text_content()) <= len(kept) + 200  # what was streamed when Stop was pressed


def test_rename_delete_and_the_selection_survive_a_reload(app: AppServer, page: Page, width: str,
                                                          shot: Shots) -> None:
    sign_in(page, app, new_user(app, "reader"))
    upload(page, width, "lease.pdf", LEASE)
    upload(page, width, "memo.pdf", make_pdf([["Memo: the office closes at six."]]))
    page.locator("#documents li", has_text="memo.pdf").locator("input[type=checkbox]").uncheck()
    for question in ("What is the monthly rent?", "When is the rent due?"):
        open_panel(page, width)
        page.click("#new-conversation")
        ask(page, width, question)
        expect(page.locator(".message.assistant a.citation").last).to_be_visible(timeout=60_000)
    open_panel(page, width)
    first = page.locator("#conversations li", has_text="What is the monthly rent?")
    first.get_by_role("button", name="rename conversation").click()
    page.fill("#conversations input.rename", "Rent amount")
    page.keyboard.press("Enter")
    expect(page.locator("#conversations li", has_text="Rent amount")).to_have_count(1)
    page.locator("#conversations li", has_text="When is the rent due?").get_by_role(
        "button", name="delete conversation").click()
    shot("delete-confirm")
    page.locator("#conversations li button.danger").click()
    expect(page.locator("#conversations li")).to_have_count(1)

    page.reload()
    open_panel(page, width)
    expect(page.locator("#conversations li")).to_have_text(["Rent amount✎×"])
    expect(page.locator("#documents li", has_text="lease.pdf").locator("input")).to_be_checked()
    expect(page.locator("#documents li", has_text="memo.pdf").locator("input")).not_to_be_checked()
    page.locator("#conversations li button.title").click()
    expect(page.locator(".message.user")).to_have_text("What is the monthly rent?")
    expect(page.locator(".message.assistant a.citation")).to_have_text("[lease.pdf, p. 2]")
    shot("conversation")


def test_plain_chat_and_a_failed_question(app: AppServer, page: Page, width: str, shot: Shots) -> None:
    sign_in(page, app, new_user(app, "reader"))
    expect(page.locator("#mode")).to_have_text("Chat with the model: no document selected")
    ask(page, width, "please fail")
    expect(page.locator("#error")).to_contain_text("scripted refusal")
    expect(page.locator(".message.user.failed")).to_contain_text("not answered")
    expect(page.locator("#question")).to_have_value("please fail")
    shot("error")
    open_panel(page, width)
    expect(page.locator("#conversations li")).to_have_count(0)
    expect(page.locator("#conversations-empty")).to_be_visible()
    page.fill("#question", "Hello model")
    expect(page.locator("#error")).to_have_text("")  # moving on clears the error
    page.click("#ask")
    expect(page.locator(".message.assistant").last).to_have_text("You said: Hello model")
    expect(page.locator("#conversations li")).to_have_count(1)


def test_a_document_whose_indexing_failed_shows_why(app: AppServer, page: Page, width: str) -> None:
    key = new_user(app, "reader")
    sign_in(page, app, key)
    upload(page, width, "lease.pdf", LEASE)
    user_id = httpx.get(f"{app.url}/api/me", headers=auth(key)).json()["id"]
    with sqlite3.connect(app.database_url.removeprefix("sqlite:///")) as db:  # as the ingest worker records one
        db.execute("UPDATE documents SET status='failed', error='indexing failed: OSError: disk full' "
                   "WHERE filename='lease.pdf' AND owner_id=?", (user_id,))
    page.reload()
    open_panel(page, width)
    failed = page.locator("#documents li", has_text="lease.pdf")
    expect(failed.locator(".status")).to_have_text("failed")
    expect(failed.locator(".doc-error")).to_have_text("indexing failed: OSError: disk full")
    expect(failed.locator("input[type=checkbox]")).to_be_disabled()


def test_an_agent_run_with_an_approval_and_a_cancel(app: AppServer, page: Page, width: str, shot: Shots) -> None:
    sign_in(page, app, new_user(app, "reader"))
    page.click("#nav a[data-view=agents]")
    expect(page.locator("#agent-runs-empty")).to_be_visible()
    page.fill("#agent-task", "rewrite hello.py")
    page.locator("#view-agents details summary").click()
    page.fill("#agent-file-name", "hello.py")
    page.fill("#agent-file-content", "print('old')\n")
    page.click("#agent-form button[type=submit]")
    box = page.locator(".approval-box")
    expect(box).to_be_visible(timeout=60_000)
    expect(box.locator("pre.diff .del")).to_have_text("-print('old')")
    expect(box.locator("pre.diff .add")).to_have_text("+print('hi')")
    expect(page.locator("#agent-run .run-status")).to_contain_text("awaiting approval")
    shot("agent-approval", full_page=True)
    box.get_by_role("button", name="Approve").click()
    expect(page.locator("#agent-run .run-status")).to_contain_text("done", timeout=60_000)
    expect(page.locator("#agent-run .step.tool")).to_contain_text("wrote 1 lines to hello.py")
    expect(page.locator("#agent-run .step.finished strong")).to_contain_text("wrote 1 lines")
    shot("agent-done", full_page=True)

    page.fill("#agent-task", "think slowly about nope.py")
    page.click("#agent-form button[type=submit]")
    expect(page.locator("#agent-run .run-status")).to_contain_text("running", timeout=30_000)
    page.click("#agent-cancel")
    expect(page.locator("#agent-run .run-status")).to_contain_text("cancelled", timeout=20_000)
    expect(page.locator("#agent-runs li")).to_have_count(2)
    expect(page.locator("#agent-runs li").first.locator(".status")).to_have_text("cancelled")


def test_an_eval_run_its_results_charts_and_a_comparison(app: AppServer, page: Page, width: str,
                                                         shot: Shots) -> None:
    sign_in(page, app, new_user(app, "reader"))
    page.goto(f"{app.url}/#/evals")
    expect(page.locator("#eval-runs-empty")).to_be_visible()
    page.select_option("#eval-benchmark", "math500")
    for limit in ("3", "2"):
        page.fill("#eval-limit", limit)
        page.click("#eval-form button[type=submit]")
        expect(page.locator("#eval-run .run-status")).to_contain_text(f"{limit} / {limit} samples", timeout=90_000)
        expect(page.locator("#eval-run .status")).to_have_text("done")
    expect(page.locator("#eval-run table.results tr")).to_have_count(3)  # header + 2 results
    expect(page.locator("#eval-run figure.chart figcaption")).to_have_text(
        ["pass@k", "MATH-500 accuracy by subject", "MATH-500 accuracy by level"])
    expect(page.locator("#eval-run table.metrics")).to_contain_text("accuracy")
    shot("eval-run", full_page=True)
    for box in page.locator("#eval-runs li input[type=checkbox]").all():
        box.check()
    page.click("#eval-compare")
    expect(page.locator("#eval-run h2")).to_have_text("Comparing two math500 runs")
    expect(page.locator("#eval-run table.results tr")).to_have_count(2)  # the problem only the first run has
    expect(page.locator("#eval-run figure.chart svg rect")).not_to_have_count(0)
    shot("eval-compare", full_page=True)


def test_api_docs_work_offline(app: AppServer, page: Page, shot: Shots) -> None:
    page.goto(f"{app.url}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=30_000)
    expect(page.locator(".opblock-summary-path", has_text="/api/qa")).to_have_count(1)
    shot("api-docs")
