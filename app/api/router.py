"""The one list of routers the app serves. To add a router: import it and append it to ROUTERS.

Order matters only for overlapping paths; the catch-all UI page comes last.
"""
from fastapi import APIRouter

from app.api.routes import (
    accounts, agent_runs, conversations, documents, embeddings, eval_runs, health, model, openai_proxy, qa,
)
from app import web

ROUTERS: list[APIRouter] = [
    health.router,
    accounts.router,
    conversations.router,
    documents.router,
    qa.router,
    model.router,
    agent_runs.router,
    eval_runs.router,
    embeddings.router,  # answered here: before the /v1 catch-all proxy
    openai_proxy.router,
    web.router,
]


def build_api_router() -> APIRouter:
    """All routers combined."""
    api = APIRouter()
    for router in ROUTERS:
        api.include_router(router)
    return api
