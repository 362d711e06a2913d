"""`GET /health`: liveness plus database and model-backend state; no key needed."""
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 when the database and the model answer; otherwise 503 (as load balancers and vLLM's
    users expect) with `status` "degraded" and the detail of each part in the JSON."""
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - any driver error means the DB is down
        database = f"error: {exc.__class__.__name__}"
    model = await request.app.state.backend.status()
    status = "ok" if database == "ok" and model.ready else "degraded"
    body = {"status": status, "database": database, "model": model.as_dict()}
    return JSONResponse(body, status_code=200 if status == "ok" else 503)
