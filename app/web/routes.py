"""Serves the UI page at `/` and its assets at `/ui/{name}` (only files in `static/`, no key needed)."""
from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}

router = APIRouter(tags=["ui"], include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(ASSETS["index.html"], media_type="text/html; charset=utf-8")


@router.get("/ui/{name}")
def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no UI file named {name!r}")
    return FileResponse(path)
