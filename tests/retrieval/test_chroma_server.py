"""The scaled-out path: the same index against a real Chroma server (`chroma run`) over HTTP."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tools.retrieval import DocumentIndex, RetrievalConfig, TokenCounter
from tools.retrieval.embeddings import MiniLMEmbeddingFunction

CHROMA = Path(sys.executable).with_name("chroma")


@pytest.fixture
def chroma_url(tmp_path: Path):
    if not CHROMA.exists() and shutil.which("chroma") is None:
        pytest.skip("the chroma CLI is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "chroma.log", "wb")
    server = subprocess.Popen([str(CHROMA), "run", "--path", str(tmp_path / "data"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise AssertionError((tmp_path / "chroma.log").read_text())
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_ingest_and_search_through_a_chroma_server(
    chroma_url: str, tmp_path: Path, counter: TokenCounter, embedder: MiniLMEmbeddingFunction
) -> None:
    config = RetrievalConfig(persist_dir=tmp_path / "unused", chroma_url=chroma_url, chunk_tokens=64,
                             overlap_tokens=8, min_chunk_tokens=16)
    index = DocumentIndex(config, counter, embedder)
    index.ingest("d1", "notes.md", b"# Ops\n\nThe backup runs nightly at 02:30 UTC.\n\n# Food\n\nLunch is at noon.\n")
    for mode in ("vector", "bm25", "hybrid"):
        hit = index.search("when does the backup run", k=1, mode=mode)[0]
        assert "02:30" in hit.text and hit.section == "Ops", mode
    assert not (tmp_path / "unused").exists()
