"""DeepSeek tool-call parsing (V3 and V3.1 formats), whole and streamed, on well-formed and malformed output."""
import json
import random

import pytest

from model_runtime.tokenizer import load_tokenizer
from model_runtime.tool_calls import (
    CALL_BEGIN,
    CALL_END,
    CALLS_BEGIN,
    CALLS_END,
    TOOL_SEP,
    ContentDelta,
    ToolCall,
    ToolCallEvent,
    ToolCallStreamParser,
    parse_tool_calls,
)


def call_text(name, arguments, fence="json"):
    head = f"{CALL_BEGIN}function{TOOL_SEP}{name}\n"
    body = f"```{fence}\n{arguments}\n```" if fence is not None else arguments
    return head + body + CALL_END


def v31_call(name, arguments):
    """DeepSeek-V3.1's format: NAME<sep>ARGS, no type, no fence."""
    return f"{CALL_BEGIN}{name}{TOOL_SEP}{arguments}{CALL_END}"


def ids(index):
    return f"call_{index}"


WEATHER = call_text("get_weather", '{"city": "Paris", "unit": "C"}')
SEARCH = call_text("web_search", '{"query": "東京 weather 🌧", "k": 3}')
BAD_JSON = call_text("get_weather", '{"city": "Paris"')
V31_WEATHER = v31_call("get_weather", '{"city": "Paris", "unit": "C"}')
V31_SEARCH = v31_call("web_search", '{"query": "東京 weather 🌧", "k": 3}')

# (model output, expected content, expected [(name, arguments)])
CASES = [
    ("Just text, no tools.", "Just text, no tools.", []),
    (CALLS_BEGIN + WEATHER + CALLS_END, "", [("get_weather", '{"city": "Paris", "unit": "C"}')]),
    (
        "Let me check. " + CALLS_BEGIN + WEATHER + "\n" + SEARCH + CALLS_END,
        "Let me check. ",
        [("get_weather", '{"city": "Paris", "unit": "C"}'), ("web_search", '{"query": "東京 weather 🌧", "k": 3}')],
    ),
    # no section end (generation stopped at EOS right after the last call)
    (CALLS_BEGIN + WEATHER + "\n", "", [("get_weather", '{"city": "Paris", "unit": "C"}')]),
    # arguments without a code fence, spaces around the name, text after the section
    (
        CALLS_BEGIN + call_text(" f ", '{"a": [1, 2]}', fence=None) + CALLS_END + " done",
        " done",
        [("f", '{"a": [1, 2]}')],
    ),
    # malformed: bad JSON is returned verbatim as content, the good call still parses
    (
        CALLS_BEGIN + BAD_JSON + "\n" + SEARCH + CALLS_END,
        BAD_JSON,
        [("web_search", '{"query": "東京 weather 🌧", "k": 3}')],
    ),
    # malformed: arguments not an object, NaN, no separator, wrong type, bad name
    (CALLS_BEGIN + call_text("f", "[1, 2]") + CALLS_END, call_text("f", "[1, 2]"), []),
    (CALLS_BEGIN + call_text("f", '{"x": NaN}') + CALLS_END, call_text("f", '{"x": NaN}'), []),
    (CALLS_BEGIN + CALL_BEGIN + "function f\n{}" + CALL_END + CALLS_END, CALL_BEGIN + "function f\n{}" + CALL_END, []),
    (
        CALLS_BEGIN + CALL_BEGIN + "code" + TOOL_SEP + "f\n{}" + CALL_END,
        CALL_BEGIN + "code" + TOOL_SEP + "f\n{}" + CALL_END,
        [],
    ),
    (CALLS_BEGIN + call_text("bad name!", "{}"), call_text("bad name!", "{}"), []),
    (CALLS_BEGIN + call_text("f", "{}")[: -len(CALL_END)] + "<｜tool▁calls▁end｜>", None, []),
    # missing end marker at the end of output: the unfinished call is content
    ("Hi" + CALLS_BEGIN + WEATHER + "\n" + WEATHER[:-3], "Hi" + "\n" + WEATHER[:-3], [("get_weather", '{"city": "Paris", "unit": "C"}')]),
    # a second call begins before the first ends: the whole run is one malformed call
    (CALLS_BEGIN + WEATHER[:-len(CALL_END)] + SEARCH + CALLS_END, WEATHER[:-len(CALL_END)] + SEARCH, []),
    # stray text inside a section, whitespace kept with it
    (CALLS_BEGIN + "  oops " + WEATHER + CALLS_END, "  oops ", [("get_weather", '{"city": "Paris", "unit": "C"}')]),
    # markers cut off at the very end
    ("abc" + CALLS_BEGIN[:7], "abc" + CALLS_BEGIN[:7], []),
    ("abc" + CALLS_BEGIN + " \n" + CALL_BEGIN[:5], "abc" + " \n" + CALL_BEGIN[:5], []),
    ("abc" + CALLS_BEGIN + " \n", "abc", []),
    # two sections
    (
        "a" + CALLS_BEGIN + WEATHER + CALLS_END + "b" + CALLS_BEGIN + SEARCH + CALLS_END + "c",
        "abc",
        [("get_weather", '{"city": "Paris", "unit": "C"}'), ("web_search", '{"query": "東京 weather 🌧", "k": 3}')],
    ),
    ("", "", []),
    # DeepSeek-V3.1: NAME<sep>{json}, calls chained without separators
    (CALLS_BEGIN + V31_WEATHER + CALLS_END, "", [("get_weather", '{"city": "Paris", "unit": "C"}')]),
    (
        "Let me check. " + CALLS_BEGIN + V31_WEATHER + V31_SEARCH + CALLS_END,
        "Let me check. ",
        [("get_weather", '{"city": "Paris", "unit": "C"}'), ("web_search", '{"query": "東京 weather 🌧", "k": 3}')],
    ),
    (CALLS_BEGIN + V31_WEATHER, "", [("get_weather", '{"city": "Paris", "unit": "C"}')]),  # no section end
    (CALLS_BEGIN + v31_call(" f ", ' {"a": [1, 2]} ') + CALLS_END + " done", " done", [("f", '{"a": [1, 2]}')]),
    (CALLS_BEGIN + v31_call("function", '{"a": 1}') + CALLS_END, "", [("function", '{"a": 1}')]),  # a tool named so
    # V3.1 malformed: bad JSON, no arguments, bad name, a non-object; the good call still parses
    (
        CALLS_BEGIN + v31_call("get_weather", '{"city": ') + V31_SEARCH + CALLS_END,
        v31_call("get_weather", '{"city": '),
        [("web_search", '{"query": "東京 weather 🌧", "k": 3}')],
    ),
    (CALLS_BEGIN + v31_call("f", "") + CALLS_END, v31_call("f", ""), []),
    (CALLS_BEGIN + v31_call("bad name!", "{}") + CALLS_END, v31_call("bad name!", "{}"), []),
    (CALLS_BEGIN + v31_call("f", '"x"') + CALLS_END, v31_call("f", '"x"'), []),
    ("Hi" + CALLS_BEGIN + V31_WEATHER + V31_SEARCH[:-4], "Hi" + V31_SEARCH[:-4], [("get_weather", '{"city": "Paris", "unit": "C"}')]),
    # V3 and V3.1 calls in one section
    (CALLS_BEGIN + WEATHER + V31_SEARCH + CALLS_END, "",
     [("get_weather", '{"city": "Paris", "unit": "C"}'), ("web_search", '{"query": "東京 weather 🌧", "k": 3}')]),
]


def stream(text, chunks, tool_names=None):
    parser = ToolCallStreamParser(tool_names=tool_names, call_id=ids)
    events = [event for chunk in chunks for event in parser.feed(chunk)] + parser.finish()
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [e.index for e in events if isinstance(e, ToolCallEvent)] == list(range(len(calls)))
    assert all(e.text for e in events if isinstance(e, ContentDelta))
    return content, calls


def random_chunks(text, rng):
    chunks, pos = [], 0
    while pos < len(text):
        size = rng.choice([1, 1, 2, 3, 5, 8, 13, 40])
        chunks.append(text[pos : pos + size])
        pos += size
    return chunks


@pytest.mark.parametrize(("text", "content", "calls"), CASES)
def test_whole_text(text, content, calls):
    got_content, got_calls = parse_tool_calls(text, call_id=ids)
    if content is not None:
        assert got_content == content
    assert [(c.name, c.arguments) for c in got_calls] == calls
    assert [c.id for c in got_calls] == [ids(i) for i in range(len(calls))]
    for c in got_calls:
        assert isinstance(json.loads(c.arguments), dict)


@pytest.mark.parametrize(("text", "content", "calls"), CASES)
def test_every_chunking_gives_the_whole_text_result(text, content, calls):
    whole = parse_tool_calls(text, call_id=ids)
    assert stream(text, [text]) == whole
    assert stream(text, list(text)) == whole
    for cut in range(len(text) + 1):
        assert stream(text, [text[:cut], text[cut:]]) == whole, cut
    rng = random.Random(1234)
    for _ in range(30):
        assert stream(text, random_chunks(text, rng)) == whole


def test_call_arriving_in_one_chunk_is_emitted_at_once():
    parser = ToolCallStreamParser(call_id=ids)
    events = parser.feed("Sure." + CALLS_BEGIN + WEATHER)
    assert events == [
        ContentDelta("Sure."),
        ToolCallEvent(0, ToolCall("call_0", "get_weather", '{"city": "Paris", "unit": "C"}')),
    ]
    assert parser.feed("\n" + SEARCH + CALLS_END) == [
        ToolCallEvent(1, ToolCall("call_1", "web_search", '{"query": "東京 weather 🌧", "k": 3}'))
    ]
    assert parser.finish() == []
    assert parser.errors == []


def test_content_streams_without_waiting_and_holds_only_possible_markers():
    parser = ToolCallStreamParser()
    assert parser.feed("Hello wor") == [ContentDelta("Hello wor")]
    assert parser.feed("ld <｜tool") == [ContentDelta("ld ")]
    assert parser.feed("s are great") == [ContentDelta("<｜tools are great")]
    assert parser.feed(" <｜tool▁calls▁begin｜>" + CALL_BEGIN + "function") == [ContentDelta(" ")]
    assert parser.finish() == [ContentDelta(CALL_BEGIN + "function")]
    assert [e.reason for e in parser.errors] == ["tool call not finished"]


def test_malformed_calls_are_recorded_with_reasons():
    parser = ToolCallStreamParser(tool_names={"get_weather"}, call_id=ids)
    text = (
        CALLS_BEGIN + BAD_JSON + " junk " + SEARCH + "\n" + call_text("get_weather", "[]") + "\n"
        + call_text("get_weather", '{"x": Infinity}') + "\n" + WEATHER + "\n" + WEATHER[:20]
    )
    events = parser.feed(text) + parser.finish()
    reasons = [e.reason for e in parser.errors]
    assert reasons[0].startswith("arguments are not valid JSON")
    assert reasons[1:] == [
        "text inside a tool-call section",
        "unknown tool 'web_search'",
        "arguments must be a JSON object",
        "arguments contain Infinity, which is not JSON",
        "tool call not finished",
    ]
    assert parser.errors[1].raw == " junk "
    assert [e.call.name for e in events if isinstance(e, ToolCallEvent)] == ["get_weather"]
    assert parse_tool_calls(text, tool_names={"get_weather"}, call_id=ids) == stream(text, [text], {"get_weather"})


def test_unknown_tool_name_becomes_content_when_names_are_given():
    text = CALLS_BEGIN + SEARCH + CALLS_END
    assert parse_tool_calls(text, tool_names={"get_weather"}) == (SEARCH, [])
    assert [c.name for c in parse_tool_calls(text)[1]] == ["web_search"]


def test_default_ids_are_unique_and_openai_shaped():
    _, calls = parse_tool_calls(CALLS_BEGIN + WEATHER + "\n" + WEATHER + CALLS_END)
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    assert calls[0].to_openai() == {
        "id": calls[0].id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'},
    }


def test_fuzzed_output_never_raises_and_streams_like_whole_text():
    """Random mixes of markers, marker fragments, JSON and text: same result in any chunking."""
    pieces = [
        CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, TOOL_SEP, "function", "get_weather", "\n", " ",
        "```json\n", "\n```", '{"a": 1}', "{", "}", "text", "東京🌧", CALLS_BEGIN[:4], CALL_END[:6], WEATHER,
    ]
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        whole = parse_tool_calls(text, tool_names={"get_weather"}, call_id=ids)
        assert stream(text, random_chunks(text, rng), {"get_weather"}) == whole, text


@pytest.mark.parametrize("calls", [WEATHER + "\n" + SEARCH, V31_WEATHER + V31_SEARCH], ids=["v3", "v3.1"])
def test_detokenized_token_stream_parses_like_whole_text_in_both_formats(calls):
    """Token by token and character by character, V3 and V3.1 output give the non-streamed result."""
    tokenizer = load_tokenizer()
    text = "Checking 🌦 now." + CALLS_BEGIN + calls + CALLS_END
    detokenizer = tokenizer.detokenizer()
    pieces = [detokenizer.add(token_id) for token_id in tokenizer.encode(text)]
    assert "".join(pieces) == text
    whole = parse_tool_calls(text, call_id=ids)
    assert whole[0] == "Checking 🌦 now." and [(c.name, json.loads(c.arguments)) for c in whole[1]] == [
        ("get_weather", {"city": "Paris", "unit": "C"}), ("web_search", {"query": "東京 weather 🌧", "k": 3})]
    assert stream(text, pieces) == whole
    assert stream(text, list(text)) == whole


def test_feed_after_finish_is_a_usage_error():
    parser = ToolCallStreamParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed("x")
