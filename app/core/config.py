"""The platform's settings: the only place in the project that reads environment variables.

Every field can be set by an environment variable of the same name in upper case
(`DATABASE_URL`, `MODEL_BACKEND`, ...). Other packages never read the environment; the app
passes them what they need from a `Settings` instance.
"""
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelBackendKind(str, Enum):
    """Where the platform's model comes from."""

    native = "native"  # `python -m model_runtime serve` as a managed subprocess
    vllm = "vllm"  # a vLLM OpenAI server (see app/backends/vllm_launcher.py)
    openai = "openai"  # any OpenAI-compatible base URL and key


class Settings(BaseSettings):
    """Typed configuration, read once at start and passed down."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", protected_namespaces=())

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: str = "INFO"

    # Storage.
    var_dir: Path = Path("var")
    database_url: str | None = None  # default: SQLite file var/app.db
    chroma_url: str | None = None  # default: embedded chromadb under var/chroma
    embedding_cache_dir: Path | None = None  # ONNX export of the embedding model; default var/models
    embedding_threads: int | None = Field(None, ge=1)  # threads for embedding uploads; default every core

    # Auth.
    app_admin_key: str | None = Field(None, min_length=16)

    # Model backend.
    model_backend: ModelBackendKind = ModelBackendKind.native
    model_path: Path = Path("models/deepseek-v3-tiny")
    model_name: str | None = None  # served name; default: native MODEL_PATH's dir name, vllm VLLM_MODEL
    model_base_url: str | None = None  # vllm/openai: e.g. http://model:8000/v1
    model_api_key: str | None = None
    model_port: int = Field(0, ge=0, le=65535)  # native server port; 0 picks a free one
    model_command: str | None = None  # native: override the server command ({model}, {port}, {name})
    # native: float32 by default, since CPUs without AVX-512 BF16 run bf16 matmuls ~40x slower
    model_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    model_speculative_tokens: int = Field(1, ge=0, le=8)  # MTP drafts per step (DeepSeek's setting: 1)
    model_num_threads: int | None = Field(None, ge=1)  # torch threads of the native server
    # native: captured (compiled) decode steps, each shape compiled in the background on first use and
    # kept in Inductor's on-disk cache (default VAR_DIR/compile-cache); true: eager steps only
    model_enforce_eager: bool = False
    model_compile_cache_dir: Path | None = None
    model_pidfile: Path | None = None  # native: default VAR_DIR/run/model_server.json (one per host)
    model_health_interval_s: float = Field(5.0, gt=0)
    model_start_timeout_s: float = Field(300.0, gt=0)
    model_timeout_s: float = Field(600.0, gt=0)  # read timeout for proxied model calls

    # vLLM launcher (backend `vllm`, docker-compose `model` service, docs/DEPLOY.md).
    vllm_model: str = "deepseek-ai/DeepSeek-V3"
    vllm_tensor_parallel_size: int = Field(8, ge=1)
    vllm_pipeline_parallel_size: int = Field(1, ge=1)
    vllm_data_parallel_size: int = Field(1, ge=1)
    vllm_enable_expert_parallel: bool = True
    vllm_speculative_tokens: int = Field(1, ge=0)
    vllm_max_model_len: int = Field(32768, ge=256)
    vllm_chat_template: str | None = "examples/tool_chat_template_deepseekv3.jinja"  # in vLLM's image/repo
    vllm_port: int = Field(8001, ge=1, le=65535)

    # Background jobs (app/services/jobs.py): workers per kind, lease and heartbeat.
    job_eval_workers: int = Field(2, ge=1)
    job_agent_workers: int = Field(4, ge=1)
    job_ingest_workers: int = Field(1, ge=1)
    job_lease_s: float = Field(30.0, gt=0)  # a job whose process died is resumed after this
    job_heartbeat_s: float = Field(2.0, gt=0)  # lease renewal; cancels in other processes take effect within this
    job_max_attempts: int = Field(3, ge=1)
    # Document QA budget (agents/docqa/window.py). The window defaults to the max_model_len the
    # model's server reports (/v1/models), else VLLM_MAX_MODEL_LEN for vllm, else 8192.
    qa_context_window: int | None = Field(None, ge=64)  # override the served model's window
    qa_answer_tokens: int | None = Field(None, ge=1)  # answer reserve; default window/8 in [256, 4096]
    # tokenizer.json the served model counts with; default: MODEL_PATH's (native), else DeepSeek-V3's
    qa_tokenizer: Path | None = None

    # Limits.
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1)  # multipart uploads
    max_body_bytes: int = Field(1024 * 1024, ge=1)  # every other request body
    rate_limit_per_minute: int = Field(120, ge=1)  # per API key
    request_timeout_s: float = Field(60.0, gt=0)  # time to first response byte
    # Parsing one upload (tools.retrieval.ParseLimits; PDFs are extracted in a bounded child process).
    parse_max_pages: int = Field(2000, ge=1)
    parse_max_chars: int = Field(4_000_000, ge=1)  # extracted text, about 1M tokens
    parse_max_content_bytes: int = Field(16 << 20, ge=1)  # inflated PDF page content (~1 CPU-s per MB)
    parse_cpu_seconds: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        """Derive the SQLite URL and the model name; require a URL for remote backends."""
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.var_dir / 'app.db').as_posix()}"
        if self.model_backend is not ModelBackendKind.native and not self.model_base_url:
            raise ValueError(f"MODEL_BASE_URL is required when MODEL_BACKEND={self.model_backend.value}")
        if self.model_name is None:
            if self.model_backend is ModelBackendKind.openai:
                raise ValueError("MODEL_NAME is required when MODEL_BACKEND=openai")
            native = self.model_backend is ModelBackendKind.native
            self.model_name = self.model_path.name if native else self.vllm_model
        return self
