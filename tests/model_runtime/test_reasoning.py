"""Thinking split from the answer, whole and streamed (by character, by token, in random chunks)."""
import random

import pytest

from model_runtime.reasoning import ReasoningStreamParser, prompt_opens_thinking, split_reasoning
from model_runtime.tokenizer import load_tokenizer

# (output, prompt opened the thinking, expected reasoning, expected content)
CASES = [
    ("The answer is 4.", False, None, "The answer is 4."),
    ("Let me add 2 and 2.</think>The answer is 4.", True, "Let me add 2 and 2.", "The answer is 4."),
    ("<think>\nhmm, 2+2</think>\n\n4", False, "\nhmm, 2+2", "\n\n4"),
    ("  \n<think>x</think>y", False, "x", "y"),
    ("still thinking when cut", True, "still thinking when cut", ""),
    ("<think>cut too", False, "cut too", ""),
    ("</think>", True, "", ""),
    ("a</think>b</think>c", True, "a", "b</think>c"),  # only the first end marker closes
    ("x <think>y</think>", False, None, "x <think>y</think>"),  # not at the start: content
    ("<thin", False, None, "<thin"),
    ("a</thi", True, "a</thi", ""),
    ("", True, "", ""),
    ("", False, None, ""),
]


def stream(chunks, in_thinking):
    parser = ReasoningStreamParser(in_thinking)
    parts = [parser.feed(chunk) for chunk in chunks] + [parser.finish()]
    reasoning = "".join(r for r, _ in parts)
    return (reasoning if parser.thinking else None), "".join(c for _, c in parts)


@pytest.mark.parametrize(("text", "in_thinking", "reasoning", "content"), CASES)
def test_whole_and_every_chunking_agree(text, in_thinking, reasoning, content):
    assert split_reasoning(text, in_thinking) == (reasoning, content)
    assert stream([text], in_thinking) == (reasoning, content)
    assert stream(list(text), in_thinking) == (reasoning, content)
    for cut in range(len(text) + 1):
        assert stream([text[:cut], text[cut:]], in_thinking) == (reasoning, content), cut
    rng = random.Random(3)
    for _ in range(20):
        chunks, pos = [], 0
        while pos < len(text):
            size = rng.choice([1, 2, 3, 7])
            chunks.append(text[pos:pos + size])
            pos += size
        assert stream(chunks, in_thinking) == (reasoning, content)


def test_token_stream_splits_like_whole_text():
    tokenizer = load_tokenizer()
    text = "<think>Compute 6×7 🧮 carefully.</think>It is 42."
    ids = tokenizer.encode(text)
    assert tokenizer.special_ids["think_end"] in ids
    detokenizer = tokenizer.detokenizer()
    pieces = [detokenizer.add(i) for i in ids]
    assert stream(pieces, False) == split_reasoning(text, False) == ("Compute 6×7 🧮 carefully.", "It is 42.")


def test_reasoning_streams_before_the_end_marker_arrives():
    parser = ReasoningStreamParser(in_thinking=True)
    assert parser.feed("First, ") == ("First, ", "")
    assert parser.feed("add.</th") == ("add.", "")
    assert parser.feed("ink>Four") == ("", "Four")


def test_prompt_opens_thinking():
    assert prompt_opens_thinking("<｜User｜>q<｜Assistant｜><think>")
    assert prompt_opens_thinking("<｜User｜>q<｜Assistant｜><think>\n")
    assert not prompt_opens_thinking("<｜User｜>q<｜Assistant｜></think>")
    assert not prompt_opens_thinking("<｜User｜>q<｜Assistant｜>")
