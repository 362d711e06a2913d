"""Pick the backend named by `MODEL_BACKEND`."""
from app.backends.base import ModelBackend
from app.backends.native import NativeBackend
from app.backends.remote import RemoteBackend
from app.core.config import ModelBackendKind, Settings


def make_backend(settings: Settings) -> ModelBackend:
    """The configured backend (not started)."""
    if settings.model_backend is ModelBackendKind.native:
        return NativeBackend(settings)
    assert settings.model_base_url is not None  # enforced by Settings
    return RemoteBackend(settings.model_backend.value, settings.model_base_url, settings.model_api_key, settings.model_name)
