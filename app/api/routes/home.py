"""Placeholder page at `/` until the web UI (app/web/) is registered in app/api/router.py."""
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["ui"])

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DeepSeek-V3 platform</title></head>
<body>
<h1>DeepSeek-V3 platform</h1>
<p>The service is running. The API is described at <a href="/docs">/docs</a>;
health is at <a href="/health">/health</a>. Send your API key as <code>Authorization: Bearer KEY</code>.</p>
<p>OpenAI-compatible endpoint for any OpenAI client: <code>/v1</code>.</p>
</body></html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home() -> str:
    return PAGE
