"""A small byte-level BPE tokenizer that keeps DeepSeek-V3's special tokens (same strings).

Special tokens come first, so BOS is id 0 and EOS id 1 as in DeepSeek-V3, and the chat template and
tool-call markers of the real tokenizer work unchanged. The chat template is copied from the
bundled DeepSeek-V3 tokenizer config.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from model_runtime.tokenizer import SPECIAL_TOKENS, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, bundled_tokenizer_dir


def train_bpe(texts: Iterable[str], vocab_size: int, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = list(SPECIAL_TOKENS.values())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.save(str(out / TOKENIZER_FILE))
    bundled = json.loads((bundled_tokenizer_dir() / TOKENIZER_CONFIG_FILE).read_text())
    config = {
        "bos_token": SPECIAL_TOKENS["bos"],
        "eos_token": SPECIAL_TOKENS["eos"],
        "pad_token": SPECIAL_TOKENS["pad"],
        "model_max_length": 16384,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": False,
        "chat_template": bundled["chat_template"],
    }
    (out / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False))
    return out
