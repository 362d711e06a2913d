"""The long-document QA web UI: static HTML/JS/CSS in `static/`, no CDN, served at `/` and `/ui/*`."""
from app.web.routes import router

__all__ = ["router"]
