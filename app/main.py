"""`create_app(settings)`: the FastAPI application, wired from one Settings object."""
import logging
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_runtime.server.body_limit import BodyLimitMiddleware

from app.api.router import build_api_router
from app.backends import make_backend
from app.core.config import Settings
from app.core.errors import error_payload
from app.core.logging import configure_logging, request_id_var
from app.core.middleware import RequestContextMiddleware, TimeoutMiddleware, body_limits, send_json
from app.core.ratelimit import RateLimiter
from app.db.migrate import upgrade
from app.db.session import make_engine, make_sessionmaker
from app.services.accounts import bootstrap_admin
from app.services.agent_runs import AgentRuns
from app.services.documents import Documents
from app.services.errors import ServiceError
from app.services.eval_runs import EvalRuns
from app.services.jobs import JobConfig, JobRunner
from app.services.qa import QA
from app.services.retrieval import RetrievalOptions, RetrievalService

log = logging.getLogger("app")


def _announce_admin_key(key: str) -> None:
    """Show a generated first admin key once, on the console."""
    bar = "=" * 72
    print(f"\n{bar}\nFirst admin API key (shown once, store it now):\n\n    {key}\n\n"
          f"Use it as 'Authorization: Bearer <key>'. Set APP_ADMIN_KEY to choose it yourself.\n{bar}\n", flush=True)
    log.warning("generated the first admin API key and printed it to the console (shown once)")


def _describe_validation_error(exc: RequestValidationError) -> str:
    """One readable line from pydantic's error list."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "json_invalid":
            parts.append(f"malformed JSON in the request body ({err.get('ctx', {}).get('error', 'decode error')})")
        else:
            parts.append(f"{where}: {err.get('msg')}")
    return "invalid request: " + "; ".join(parts)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    extra = {"errors": jsonable_encoder(exc.errors(), exclude={"input"})}
    return JSONResponse(error_payload(request.url.path, 422, _describe_validation_error(exc), extra), status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(error_payload(request.url.path, exc.status_code, message), status_code=exc.status_code,
                        headers=exc.headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(error_payload(request.url.path, exc.status, exc.message), status_code=exc.status)


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    body = error_payload(request.url.path, 500, "internal error", {"request_id": request_id_var.get()})
    return JSONResponse(body, status_code=500)


@asynccontextmanager
async def _lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    upgrade(app.state.engine)
    with app.state.sessionmaker() as db:
        new_key = bootstrap_admin(db, settings.app_admin_key)
    if new_key:
        _announce_admin_key(new_key)
    timeout = httpx.Timeout(settings.model_timeout_s, connect=10.0)
    async with httpx.AsyncClient(timeout=timeout) as http:
        app.state.http = http
        await app.state.backend.start()
        app.state.jobs.start()
        log.info("app started", extra={"database": app.state.engine.url.render_as_string(), "model_backend":
                                       settings.model_backend.value, "worker_id": app.state.jobs.worker_id})
        try:
            yield
        finally:
            app.state.jobs.stop()  # running jobs are released: a restart resumes them
            await app.state.backend.stop()
    app.state.engine.dispose()


def create_app(settings: Settings) -> FastAPI:
    """Build the app; migrations, the admin key and the model backend start with its lifespan."""
    configure_logging(settings.log_level)
    # /docs and /redoc with Swagger UI's and ReDoc's files served from the fastapi-offline package
    # (under /static-offline-docs), not from a CDN: the platform works without internet.
    app = FastAPIOffline(title="DeepSeek-V3 platform", version="0.1.0", lifespan=_lifespan)
    app.state.settings = settings
    app.state.engine = make_engine(settings)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.backend = make_backend(settings)
    sessions, backend = app.state.sessionmaker, app.state.backend
    app.state.retrieval = RetrievalService(RetrievalOptions.from_settings(settings))
    app.state.documents = Documents(settings, sessions, app.state.retrieval)
    app.state.qa = QA(sessions, backend, app.state.retrieval, app.state.documents, settings.model_timeout_s)
    app.state.agent_runs = AgentRuns(settings, sessions, backend)
    app.state.eval_runs = EvalRuns(settings, sessions, backend)
    handlers = [app.state.agent_runs, app.state.eval_runs, app.state.documents]
    app.state.jobs = JobRunner(sessions, handlers, JobConfig(
        lease_s=settings.job_lease_s, heartbeat_s=settings.job_heartbeat_s, max_attempts=settings.job_max_attempts))
    app.include_router(build_api_router())
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(Exception, _unhandled_error)
    # Added last = outermost: request id/logging wraps the limits.
    app.add_middleware(TimeoutMiddleware, timeout_s=settings.request_timeout_s, exempt_prefixes=("/v1",))
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limits(settings.max_body_bytes, settings.max_upload_bytes),
                       reject=send_json)
    app.add_middleware(RequestContextMiddleware)
    return app
