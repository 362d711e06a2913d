"""`python -m app` (what `make run` does): serve the platform on HOST:PORT (default 127.0.0.1:8000)."""
import sys

import uvicorn
from pydantic import ValidationError

from app.core.config import Settings
from app.main import create_app


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"error: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, timeout_keep_alive=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
