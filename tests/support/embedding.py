"""Where tests keep the one-time ONNX export of the embedding model: the repo's var/models, the
app's default, so the suite exports once rather than once per temporary directory."""
from pathlib import Path

EMBEDDING_CACHE_DIR = Path(__file__).resolve().parents[2] / "var" / "models"
