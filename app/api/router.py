"""The one list of routers the app serves. To add a router: import it and append it to ROUTERS.

Order matters only for overlapping paths; the catch-all UI page comes last. A route that serves
several methods (the `/v1` proxy) becomes one route per method, so that each OpenAPI operation
has its own id (FastAPI gives them one id and warns "Duplicate Operation ID").
"""
from fastapi import APIRouter
from fastapi.routing import APIRoute

from app.api.routes import (
    accounts, agent_runs, conversations, documents, eval_runs, health, model, openai_proxy, qa,
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
    openai_proxy.router,
    web.router,
]


def one_route_per_method(router: APIRouter) -> APIRouter:
    """`router`, or when it has a route serving several methods, a copy in which that route is one
    route per method with its own operation id (`proxy_get`, `proxy_post`, ...)."""
    if not any(isinstance(r, APIRoute) and len(r.methods) > 1 and not r.operation_id for r in router.routes):
        return router
    split = APIRouter()
    for route in router.routes:
        if not isinstance(route, APIRoute) or len(route.methods) < 2 or route.operation_id:
            split.routes.append(route)
            continue
        for method in sorted(route.methods):
            split.add_api_route(
                route.path, route.endpoint, methods=[method], name=route.name, tags=route.tags,
                dependencies=route.dependencies, summary=route.summary, description=route.description,
                responses=route.responses, response_class=route.response_class, status_code=route.status_code,
                include_in_schema=route.include_in_schema, operation_id=f"{route.name}_{method.lower()}",
            )
    return split


def build_api_router() -> APIRouter:
    """All routers combined."""
    api = APIRouter()
    for router in ROUTERS:
        api.include_router(one_route_per_method(router))
    return api
