"""docker-compose.yml: the four services with health checks and volumes, and a `model` service
whose vLLM command is exactly what the launcher builds. (CI also runs `docker-compose config -q`.)"""
import re
from pathlib import Path

import yaml

from app.backends.vllm_launcher import vllm_command
from app.core.config import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _with_defaults(value: str) -> str:
    """Interpolate `${VAR:-default}` with its default, as docker-compose does when VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_services_have_health_checks_and_volumes():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"app", "model", "chroma", "postgres"}
    for name, svc in services.items():
        assert svc["healthcheck"]["test"], name
    for name in ("app", "model", "chroma", "postgres"):
        for volume in services[name]["volumes"]:
            assert volume.split(":")[0] in spec["volumes"], (name, volume)
    app_env = services["app"]["environment"]
    assert app_env["MODEL_BACKEND"] == "vllm" and app_env["MODEL_BASE_URL"] == "http://model:8000/v1"
    assert _with_defaults(app_env["DATABASE_URL"]).startswith("postgresql+psycopg://")
    assert app_env["CHROMA_URL"] == "http://chroma:8000"
    assert services["app"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    Settings(**{k.lower(): _with_defaults(str(v)) for k, v in app_env.items() if v is not None and k != "HF_HUB_OFFLINE"})


def test_compose_model_service_runs_the_launcher_command():
    model = yaml.safe_load(COMPOSE.read_text())["services"]["model"]
    assert model["image"].startswith("vllm/vllm-openai")
    assert model["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    compose_cmd = model["entrypoint"] + [_with_defaults(arg) for arg in model["command"]]
    settings = Settings(model_backend="vllm", model_base_url="http://model:8000/v1",
                        model_api_key="change-me-model-key", vllm_port=8000)
    assert sorted(_pairs(compose_cmd)) == sorted(_pairs(vllm_command(settings)))


def _pairs(cmd: list[str]) -> list[tuple[str, str | None]]:
    """Flags with their values, order-free (`vllm serve MODEL` kept as the first pair)."""
    out, i = [(" ".join(cmd[:3]), None)], 3
    while i < len(cmd):
        has_value = i + 1 < len(cmd) and not cmd[i + 1].startswith("--")
        out.append((cmd[i], cmd[i + 1] if has_value else None))
        i += 2 if has_value else 1
    return out
