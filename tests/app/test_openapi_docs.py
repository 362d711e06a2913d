"""/docs works offline (Swagger UI's files come from the fastapi-offline package, not a CDN) and
every OpenAPI operation has its own id (the /v1 proxy serves two methods)."""
import asyncio
import re
import warnings

import httpx

from app.core.config import Settings
from app.main import create_app


def test_every_operation_has_its_own_id(tmp_path):
    app = create_app(Settings(var_dir=tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns "Duplicate Operation ID ..."
        schema = app.openapi()
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert {"openai_proxy_get", "openai_proxy_post"} <= set(ids)


def test_docs_load_their_assets_from_the_app(tmp_path):
    app = create_app(Settings(var_dir=tmp_path))

    async def fetch() -> tuple[httpx.Response, list[httpx.Response]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            page = await client.get("/docs")
            urls = re.findall(r'(?:href|src)="([^"]+)"', page.text)
            return page, [await client.get(url) for url in urls]

    page, assets = asyncio.run(fetch())
    assert page.status_code == 200 and "cdn" not in page.text.lower() and "https://" not in page.text
    assert len(assets) == 3 and all(a.status_code == 200 and len(a.content) > 1000 for a in assets)
    assert any(a.headers["content-type"].startswith("text/css") for a in assets)
