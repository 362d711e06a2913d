"""Document QA on the default install: latency and answers of the bundled model for a small
document and a 40-page PDF, through the app's HTTP API.

    .venv/bin/python benchmarks/qa_default_install.py --port 8130 --questions 3 --out bench-out/qa-default.json

Starts `python -m app` as `make run` does (native backend serving models/deepseek-v3-tiny, SQLite
and chromadb under a fresh var dir; only the port, the var dir and APP_ADMIN_KEY are set), waits
for the model, uploads a 4-line Markdown note and a 40-page PDF (about 35,800 DeepSeek-V3 tokens,
63,200 of the bundled model's), then asks each document the same questions, streamed (time to
first token, total, answer tokens, how it ended, whole document or retrieval) and once without
streaming (the HTTP status that was 502 before issue 13). Medians are reported.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.retrieval.documents import long_pdf  # noqa: E402

NOTE = b"# Lease\n\nThe monthly rent is 900 euros.\n\nPets are allowed.\n"
QUESTIONS = {"lease.md": ["What is the monthly rent?", "Are pets allowed?", "Who is the landlord?"],
             "report.pdf": ["What is the inspection certificate number?", "What does section 12.3 record?",
                            "Summarise the report."]}


def wait(what: str, ok, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:g} s")
        time.sleep(0.5)


def upload(client: httpx.Client, name: str, data: bytes) -> tuple[dict, float]:
    started = time.monotonic()
    doc = client.post("/api/documents", files={"file": (name, data)}).json()
    while doc["status"] in ("pending", "processing"):
        time.sleep(0.5)
        doc = client.get(f"/api/documents/{doc['id']}").json()
    if doc["status"] != "ready":
        raise SystemExit(f"{name}: {doc}")
    return doc, time.monotonic() - started


def ask_streamed(client: httpx.Client, question: str, document_id: str) -> dict:
    started, first, events = time.monotonic(), None, {}
    body = {"question": question, "document_ids": [document_id], "stream": True}
    with client.stream("POST", "/api/qa", json=body) as response:
        status = response.status_code
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "token" and first is None:
                first = time.monotonic() - started
            events[event["type"]] = event
    done, context = events.get("done", {}), events.get("context", {})
    return {"status": status, "error": events.get("error", {}).get("detail"), "ttft_s": first,
            "total_s": time.monotonic() - started, "answer_tokens": done.get("answer_tokens"),
            "ending": done.get("ending"), "answer": done.get("answer"), "whole_documents": context.get("whole_documents"),
            "context_tokens": context.get("n_tokens"), "window": context.get("window"),
            "citations": [(c["text"], c["exists"]) for c in done.get("citations", [])]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8130)
    parser.add_argument("--questions", type=int, default=3, help="questions per document (at most 3)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/qa-default.json"))
    args = parser.parse_args()
    key = "bench-" + secrets.token_hex(16)
    var = Path(tempfile.mkdtemp(prefix="qa-bench-", dir=REPO / "var"))
    env = {**os.environ, "PORT": str(args.port), "VAR_DIR": str(var), "APP_ADMIN_KEY": key,
           "EMBEDDING_CACHE_DIR": str(REPO / "var" / "models")}
    with open(var / "app.log", "wb") as log:
        app = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{args.port}"
    try:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600)

        def model_ready() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=2).json()["model"]["state"] == "ready"
            except httpx.HTTPError:
                return False

        started = time.monotonic()
        wait("model ready", model_ready, 300)
        results = {"model": client.get("/api/model").json(), "startup_s": round(time.monotonic() - started, 1),
                   "documents": {}}
        for name, data in (("lease.md", NOTE), ("report.pdf", long_pdf())):
            doc, ingest_s = upload(client, name, data)
            runs = [ask_streamed(client, q, doc["id"]) for q in QUESTIONS[name][: args.questions]]
            plain_started = time.monotonic()
            plain = client.post("/api/qa", json={"question": QUESTIONS[name][0], "document_ids": [doc["id"]]})
            results["documents"][name] = {
                "pages": doc["n_pages"], "chunks": doc["n_chunks"], "ingest_s": round(ingest_s, 2),
                "non_streamed": {"status": plain.status_code, "total_s": round(time.monotonic() - plain_started, 2),
                                 "ending": plain.json().get("ending")},
                "median_ttft_s": round(statistics.median(r["ttft_s"] for r in runs if r["ttft_s"] is not None), 2),
                "median_total_s": round(statistics.median(r["total_s"] for r in runs), 2),
                "median_answer_tokens": statistics.median(r["answer_tokens"] or 0 for r in runs),
                "runs": runs,
            }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(json.dumps({k: v for k, v in results.items() if k != "documents"}, indent=2))
        for name, d in results["documents"].items():
            print(f"{name}: {d['pages']} pages, {d['chunks']} chunks, ingest {d['ingest_s']} s, non-streamed HTTP "
                  f"{d['non_streamed']['status']} in {d['non_streamed']['total_s']} s; streamed median TTFT "
                  f"{d['median_ttft_s']} s, total {d['median_total_s']} s, {d['median_answer_tokens']} answer tokens")
            for r in d["runs"]:
                print(f"  HTTP {r['status']} whole={r['whole_documents']} context={r['context_tokens']} "
                      f"ending={r['ending']} tokens={r['answer_tokens']} {r['total_s']:.2f}s {r['answer']!r:.80}")
        return 0
    finally:
        app.terminate()
        app.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
