"""API behaviour against a real `python -m app` process, on SQLite and on PostgreSQL."""

import httpx
import openai
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.db.models import Document, User
from app.core.security import hash_api_key
from app.db.models import ApiKey
from tests.app.conftest import LIMITS, auth, new_user


def test_health_needs_no_key_and_reports_parts(app_server):
    resp = httpx.get(f"{app_server.url}/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["model"]["backend"] == "native" and body["model"]["state"] == "ready"
    assert resp.headers["x-request-id"]


def test_requests_without_a_valid_key_are_401(app_server):
    for method, path in [("GET", "/api/me"), ("GET", "/api/documents"), ("GET", "/api/conversations"),
                         ("GET", "/v1/models"), ("POST", "/v1/chat/completions")]:
        resp = httpx.request(method, f"{app_server.url}{path}")
        assert resp.status_code == 401, (path, resp.text)
        if path.startswith("/v1/"):  # OpenAI clients read error.message
            assert resp.json()["error"]["type"] == "authentication_error"
            assert "API key" in resp.json()["error"]["message"]
        else:
            assert "API key" in resp.json()["detail"]
        assert resp.headers["www-authenticate"] == "Bearer"
    bad = httpx.get(f"{app_server.url}/api/me", headers=auth("dsk-not-a-real-key"))
    assert bad.status_code == 401 and bad.json()["detail"] == "invalid or revoked API key"
    basic = httpx.get(f"{app_server.url}/api/me", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401


def test_keys_are_hashed_at_rest_and_revocable(app_server):
    key = new_user(app_server, "keys")
    me = httpx.get(f"{app_server.url}/api/me", headers=auth(key))
    assert me.status_code == 200 and me.json()["is_admin"] is False
    engine = create_engine(app_server.database_url)
    with Session(engine) as db:
        hashes = set(db.scalars(select(ApiKey.key_hash)))
    engine.dispose()
    assert hash_api_key(key) in hashes and key not in hashes
    second = httpx.post(f"{app_server.url}/api/keys", json={"name": "ci"}, headers=auth(key)).json()
    assert httpx.get(f"{app_server.url}/api/me", headers=auth(second["api_key"])).status_code == 200
    gone = httpx.delete(f"{app_server.url}/api/keys/{second['id']}", headers=auth(key))
    assert gone.status_code == 204
    assert httpx.get(f"{app_server.url}/api/me", headers=auth(second["api_key"])).status_code == 401
    assert httpx.get(f"{app_server.url}/api/me", headers=auth(key)).status_code == 200


def test_only_admins_create_users(app_server):
    key = new_user(app_server, "plain")
    resp = httpx.post(f"{app_server.url}/api/users", json={"name": "sneaky"}, headers=auth(key))
    assert resp.status_code == 403 and resp.json()["detail"] == "admin only"


def test_another_users_document_is_404(app_server):
    alice, bob = new_user(app_server, "alice"), new_user(app_server, "bob")
    alice_id = httpx.get(f"{app_server.url}/api/me", headers=auth(alice)).json()["id"]
    engine = create_engine(app_server.database_url)
    with Session(engine) as db:
        doc = Document(owner_id=alice_id, filename="alice.txt", status="ready", size_bytes=5)
        db.add(doc)
        db.commit()
        doc_id = doc.id
        assert db.get(User, alice_id).name.startswith("alice")
    engine.dispose()
    mine = httpx.get(f"{app_server.url}/api/documents/{doc_id}", headers=auth(alice))
    assert mine.status_code == 200 and mine.json()["filename"] == "alice.txt"
    theirs = httpx.get(f"{app_server.url}/api/documents/{doc_id}", headers=auth(bob))
    assert theirs.status_code == 404 and "not found" in theirs.json()["detail"]
    listing = httpx.get(f"{app_server.url}/api/documents", headers=auth(bob)).json()
    assert doc_id not in [d["id"] for d in listing]
    borrowed = httpx.post(f"{app_server.url}/api/conversations", json={"title": "t", "document_ids": [doc_id]},
                          headers=auth(bob))
    assert borrowed.status_code == 404 and doc_id in borrowed.json()["detail"]
    assert httpx.get(f"{app_server.url}/api/conversations", headers=auth(bob)).json() == []
    own = httpx.post(f"{app_server.url}/api/conversations", json={"title": "t", "document_ids": [doc_id]},
                     headers=auth(alice))
    assert own.status_code == 201 and own.json()["document_ids"] == [doc_id]


def test_another_users_conversation_is_404(app_server):
    alice, bob = new_user(app_server, "alice"), new_user(app_server, "bob")
    conv = httpx.post(f"{app_server.url}/api/conversations", json={"title": "mine"}, headers=auth(alice))
    assert conv.status_code == 201
    cid = conv.json()["id"]
    assert httpx.get(f"{app_server.url}/api/conversations/{cid}", headers=auth(alice)).status_code == 200
    assert httpx.get(f"{app_server.url}/api/conversations/{cid}", headers=auth(bob)).status_code == 404
    assert httpx.delete(f"{app_server.url}/api/conversations/{cid}", headers=auth(bob)).status_code == 404
    assert cid not in [c["id"] for c in httpx.get(f"{app_server.url}/api/conversations", headers=auth(bob)).json()]


def test_oversize_upload_and_body_are_413(app_server):
    key = new_user(app_server, "big")
    limit = int(LIMITS["MAX_UPLOAD_BYTES"])
    big = httpx.post(f"{app_server.url}/api/documents", headers=auth(key),
                     files={"file": ("big.txt", b"x" * (limit + 1), "text/plain")})
    assert big.status_code == 413
    assert big.json()["detail"] == f"upload too large: the limit is {limit} bytes"
    small = httpx.post(f"{app_server.url}/api/documents", headers=auth(key),
                       files={"file": ("small.txt", b"x" * 100, "text/plain")})
    assert small.status_code != 413
    body_limit = int(LIMITS["MAX_BODY_BYTES"])
    json_big = httpx.post(f"{app_server.url}/api/conversations", headers=auth(key),
                          json={"title": "t", "document_ids": ["a" * 100] * (body_limit // 100)})
    assert json_big.status_code == 413 and "request body too large" in json_big.json()["detail"]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(body_limit // 1000 + 2):
            yield b" " * 1000

    streamed = httpx.post(f"{app_server.url}/api/conversations", headers={**auth(key), "content-type": "application/json"},
                          content=chunks())
    assert streamed.status_code == 413


@pytest.mark.parametrize("raw_path", ["/v1/%0C", "/v1/..%2Fmetrics", "/v1/%2e%2e/metrics", "/v1/models/..%2F..%2Fmetrics",
                                      "/v1/models//x", "/v1/a%00b", "/v1/" + "x/" * 9 + "y"])
def test_v1_proxy_reaches_only_v1_endpoints(app_server, raw_path):
    """`/v1/%0C` was a 500 (httpx.InvalidURL); `/v1/..%2Fmetrics` reached the backend's /metrics."""
    key = new_user(app_server, "proxy")
    resp = httpx.get(app_server.url + raw_path, headers=auth(key))
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and "invalid /v1 path" in error["message"]


def test_v1_errors_made_by_the_app_are_openai_errors(app_server):
    key = new_user(app_server, "oai-errors")
    body_limit = int(LIMITS["MAX_BODY_BYTES"])
    big = httpx.post(f"{app_server.url}/v1/chat/completions", headers=auth(key),
                     json={"model": "stand-in", "messages": [{"role": "user", "content": "x" * body_limit}]})
    assert big.status_code == 413 and "request body too large" in big.json()["error"]["message"]
    method = httpx.put(f"{app_server.url}/v1/models", headers=auth(key))
    assert method.status_code == 405 and method.json()["error"]["message"]
    client = openai.OpenAI(base_url=f"{app_server.url}/v1", api_key="dsk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        client.models.list()
    assert denied.value.body["message"] == "invalid or revoked API key"


def test_malformed_json_is_422_with_a_message(app_server):
    key = new_user(app_server, "json")
    resp = httpx.post(f"{app_server.url}/api/conversations", headers={**auth(key), "content-type": "application/json"},
                      content=b'{"title": "unterminated')
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("invalid request: malformed JSON in the request body")
    wrong = httpx.post(f"{app_server.url}/api/conversations", headers=auth(key), json={"title": 5})
    assert wrong.status_code == 422 and "title" in wrong.json()["detail"]


def test_rate_limit_is_429_per_key(app_server):
    key, other = new_user(app_server, "rl"), new_user(app_server, "rl2")
    limit = int(LIMITS["RATE_LIMIT_PER_MINUTE"])
    with httpx.Client(base_url=app_server.url, headers=auth(key)) as client:
        codes = [client.get("/api/me").status_code for _ in range(limit + 3)]
        assert codes[:limit] == [200] * limit and codes[limit:] == [429] * 3
        blocked = client.get("/api/me")
        blocked_v1 = client.get("/v1/models")
    assert blocked.status_code == 429 and "rate limit" in blocked.json()["detail"]
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked_v1.status_code == 429 and blocked_v1.json()["error"]["type"] == "rate_limit_error"
    assert httpx.get(f"{app_server.url}/api/me", headers=auth(other)).status_code == 200  # per key


def test_request_id_is_echoed_and_logged(app_server):
    resp = httpx.get(f"{app_server.url}/health", headers={"X-Request-ID": "trace-me-123"})
    assert resp.headers["x-request-id"] == "trace-me-123"
    hits = app_server.wait_for_log_records(lambda r: r.get("request_id") == "trace-me-123")
    assert hits and hits[-1]["path"] == "/health" and hits[-1]["status"] == 200


def test_openai_client_through_the_v1_proxy(app_server):
    key = new_user(app_server, "oai")
    client = openai.OpenAI(base_url=f"{app_server.url}/v1", api_key=key)
    assert [m.id for m in client.models.list()] == ["stand-in"]
    reply = client.chat.completions.create(model="stand-in", messages=[{"role": "user", "content": "hello there"}])
    assert reply.choices[0].message.content == "echo: hello there"
    stream = client.chat.completions.create(
        model="stand-in", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 4 and "".join(pieces).strip() == "echo: one two three"
    denied = openai.OpenAI(base_url=f"{app_server.url}/v1", api_key="wrong", max_retries=0)
    try:
        denied.models.list()
        raise AssertionError("a wrong key must be rejected")
    except openai.AuthenticationError as exc:
        assert exc.status_code == 401


def test_embeddings_serve_the_retrieval_model(app_server):
    """/v1/embeddings answers in the app (before the proxy) with the retrieval index's own model."""
    import numpy as np

    from tests.support.embedding import EMBEDDING_CACHE_DIR
    from tools.retrieval.embeddings import MiniLMEmbeddingFunction

    client = openai.OpenAI(base_url=f"{app_server.url}/v1", api_key=new_user(app_server, "emb"), max_retries=0)
    texts = ["The invoice is due in March.", "Payment terms: 30 days."]
    response = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # the client asks for base64
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    local = MiniLMEmbeddingFunction(EMBEDDING_CACHE_DIR)(texts)
    for served, plain, expected in zip(response.data, floats.data, local, strict=True):
        assert len(served.embedding) == 384 and np.allclose(served.embedding, expected, atol=1e-5)
        assert np.allclose(plain.embedding, served.embedding, atol=1e-6)
    assert [d.index for d in response.data] == [0, 1] and response.usage.prompt_tokens > 10
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model="all-MiniLM-L6-v2", input=[[1, 2, 3]])
    assert "token-id inputs are not supported" in bad.value.body["message"]
