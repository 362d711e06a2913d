"""The default install, as `make run` starts it: the bundled deepseek-v3-tiny served by the native
runtime (a real `python -m model_runtime serve` subprocess, 4,096-token window). A small
document and a 40-page PDF both get an answer with HTTP 200 (issue 13: the QA agent assumed
131,072 tokens and asked 4,096 answer tokens, so every question failed with 502)."""
import time

import httpx
import pytest

from tests.app.conftest import auth, new_user, start_app, stop_app
from tests.retrieval.documents import long_pdf

pytestmark = pytest.mark.timeout(600)
NOTE = b"# Lease\n\nThe monthly rent is 900 euros.\n\nPets are allowed.\n"


@pytest.fixture(scope="module")
def default_app(tmp_path_factory):
    # No MODEL_NAME and no MODEL_COMMAND: the app's defaults (MODEL_PATH models/deepseek-v3-tiny).
    server = start_app(tmp_path_factory.mktemp("default"), f"sqlite:///{tmp_path_factory.mktemp('db') / 'app.db'}",
                       {"MODEL_NAME": None, "MODEL_COMMAND": None, "MODEL_HEALTH_INTERVAL_S": None,
                        "MAX_UPLOAD_BYTES": str(4 << 20), "RATE_LIMIT_PER_MINUTE": "600"}, timeout_s=300)
    yield server
    stop_app(server)


def upload_and_wait(server, key: str, name: str, data: bytes) -> dict:
    resp = httpx.post(f"{server.url}/api/documents", files={"file": (name, data)}, headers=auth(key), timeout=60)
    assert resp.status_code in (201, 202), resp.text
    doc = resp.json()
    deadline = time.monotonic() + 300
    while doc["status"] in ("pending", "processing") and time.monotonic() < deadline:
        time.sleep(1)
        doc = httpx.get(f"{server.url}/api/documents/{doc['id']}", headers=auth(key)).json()
    assert doc["status"] == "ready", doc
    return doc


def ask(server, key: str, question: str, document_id: str) -> dict:
    resp = httpx.post(f"{server.url}/api/qa", json={"question": question, "document_ids": [document_id]},
                      headers=auth(key), timeout=300)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ending"] in ("complete", "loop") and body["conversation_id"] and body["message_id"]
    return body


def test_the_bundled_model_answers_a_small_document_and_a_40_page_pdf(default_app):
    key = new_user(default_app, "reader")
    note = upload_and_wait(default_app, key, "lease.md", NOTE)
    ask(default_app, key, "What is the monthly rent?", note["id"])

    report = upload_and_wait(default_app, key, "report.pdf", long_pdf())
    assert report["pages_done"] == report["pages_total"] == 40
    assert report["chunks_done"] == report["chunks_total"] == report["n_chunks"] > 40
    ask(default_app, key, "What is the inspection certificate number?", report["id"])
    with httpx.stream("POST", f"{default_app.url}/api/qa", headers=auth(key), timeout=300,
                      json={"question": "What is in the report?", "document_ids": [report["id"]], "stream": True}) as r:
        kinds = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    assert kinds[0] == "conversation" and kinds[-1] == "done" and "error" not in kinds, kinds

    model = httpx.get(f"{default_app.url}/api/model", headers=auth(key), timeout=30).json()
    assert model["name"] == "deepseek-v3-tiny" and model["state"] == "ready"
    assert model["qa"] == {"context_window": 4096, "answer_tokens": 512, "source": "served model"}
