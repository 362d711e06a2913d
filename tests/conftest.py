"""Suite-wide test setup: everything runs offline."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# One intra-op thread: the tiny models of the suite gain nothing from more, and on a busy machine
# OpenMP threads spinning against each other make runs many times slower.
import torch  # noqa: E402

torch.set_num_threads(1)
