# The app image for docker-compose.yml (service `app`). CPU-only: the model runs in the `model`
# service (vLLM) or, with MODEL_BACKEND=native, in this container on the bundled tiny model.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/platform

# A C++ compiler for the native runtime's captured decode steps (Inductor) and its paged attention
# kernel; without one they are logged as failed and decoding runs eagerly.
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md ./
COPY app ./app
COPY model_runtime ./model_runtime
COPY agents ./agents
COPY tools ./tools
COPY evals ./evals
COPY models ./models

# The CPU build of torch first, so the project's pin does not pull a CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && pip install .

EXPOSE 8000
CMD ["python", "-m", "app"]
