"""Chat rendering with DeepSeek-V3's own template: tools in the system prompt, tool calls, tool results."""
import pytest

from model_runtime.chat_template import ChatTemplate, ChatTemplateError, fix_multi_round_tool_calls
from model_runtime.tokenizer import load_tokenizer
from model_runtime.tool_calls import parse_tool_calls

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
OUTS_BEGIN, OUTS_END = "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>"
OUT_BEGIN, OUT_END = "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK_TOOL = {"type": "function", "function": {"name": "now"}}

# The tool block of docs/CHAT_FORMAT.md, written out by hand.
TOOLS_BLOCK = (
    "## Tools\n\n"
    "You can call the following tools. Each line describes one tool as a JSON object with its name, "
    "description and parameters (a JSON Schema):\n"
    '{"name": "get_weather", "description": "Current weather of a city.", "parameters": {"type": "object", '
    '"properties": {"city": {"type": "string"}}, "required": ["city"]}}\n'
    '{"name": "now", "parameters": {"type": "object", "properties": {}}}\n\n'
    "To call tools, answer with this exact format, where NAME is the tool's name and the arguments are "
    "one JSON object that matches its parameters:\n"
    f"{CALLS_BEGIN}{CALL_BEGIN}function{SEP}NAME\n```json\n" + '{"argument": "value"}' + f"\n```{CALL_END}{CALLS_END}\n"
    f"To make several calls, put one {CALL_BEGIN}...{CALL_END} after another, separated by a newline, "
    f"inside the same {CALLS_BEGIN}...{CALLS_END}. The tool results come back in the next turn. "
    "When no tool is needed, answer directly."
)

CONVERSATION = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in Paris and Tokyo?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "東京"}'}},
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "18C, sunny"},
    {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "22C, rain"}]},
    {"role": "assistant", "content": "Paris: 18C and sunny. Tokyo: 22C with rain."},
    {"role": "user", "content": [{"type": "text", "text": "Thanks!"}]},
]


def call(name, arguments):
    return f"{CALL_BEGIN}function{SEP}{name}\n```json\n{arguments}\n```{CALL_END}"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_conversation_with_tools_renders_exactly(tokenizer):
    expected = (
        f"{BOS}You are a weather bot.\n\n{TOOLS_BLOCK}"
        f"{USER}Weather in Paris and Tokyo?"
        f"{ASSISTANT}{CALLS_BEGIN}"
        + call("get_weather", '{"city": "Paris"}')
        + "\n"
        + call("get_weather", '{"city": "東京"}')
        + f"{CALLS_END}{EOS}"
        f"{OUTS_BEGIN}{OUT_BEGIN}18C, sunny{OUT_END}{OUT_BEGIN}22C, rain{OUT_END}"
        f"{OUTS_END}Paris: 18C and sunny. Tokyo: 22C with rain.{EOS}"
        f"{USER}Thanks!{ASSISTANT}"
    )
    assert tokenizer.apply_chat_template(CONVERSATION, tools=[WEATHER_TOOL, CLOCK_TOOL]) == expected


def test_rendered_markers_tokenise_to_their_single_ids(tokenizer):
    text = tokenizer.apply_chat_template(CONVERSATION, tools=[WEATHER_TOOL, CLOCK_TOOL])
    ids = tokenizer.encode_chat(CONVERSATION, tools=[WEATHER_TOOL, CLOCK_TOOL])
    assert ids[0] == tokenizer.bos_id
    assert tokenizer.decode(ids) == text
    for marker, token_id in tokenizer.special_ids.items():
        marker_text = tokenizer.tokenizer.id_to_token(token_id)
        assert ids.count(token_id) == text.count(marker_text), marker
    # 2 calls in the assistant turn + 2 mentions in the tool block, 2 results, 2 user turns
    assert ids.count(128808) == 4 and ids.count(128812) == 2 and ids.count(128803) == 2


def test_generation_prompt_after_tool_results_and_without(tokenizer):
    # After tool outputs, DeepSeek's template closes them and lets the model answer right away.
    after_tools = tokenizer.apply_chat_template(CONVERSATION[:5])
    assert after_tools.endswith(f"22C, rain{OUT_END}{OUTS_END}")
    assert tokenizer.apply_chat_template(CONVERSATION[:2]).endswith(f"{USER}Weather in Paris and Tokyo?{ASSISTANT}")
    assert tokenizer.apply_chat_template(CONVERSATION[:2], add_generation_prompt=False).endswith("Tokyo?")


def test_no_tools_no_tool_block(tokenizer):
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tools=[])
    assert rendered == f"{BOS}{USER}hi{ASSISTANT}"
    tools_only = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL])
    assert tools_only.startswith(f"{BOS}## Tools\n\n") and tools_only.endswith(f"{USER}hi{ASSISTANT}")


def test_assistant_text_with_tool_calls_and_empty_tool_calls(tokenizer):
    messages = [
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [{"function": {"name": "now", "arguments": {}}}]},
        {"role": "tool", "content": "12:00"},
        {"role": "assistant", "content": "Noon.", "tool_calls": []},
    ]
    expected = (
        f"{BOS}{USER}time?{ASSISTANT}Let me look.{CALLS_BEGIN}" + call("now", "{}") + f"{CALLS_END}{EOS}"
        f"{OUTS_BEGIN}{OUT_BEGIN}12:00{OUT_END}{OUTS_END}Noon.{EOS}"
    )
    assert tokenizer.apply_chat_template(messages, add_generation_prompt=False) == expected


def test_several_tool_rounds_render_like_the_first(tokenizer):
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "now", "arguments": "{}"}}]},
        {"role": "tool", "content": "r1"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "r2"},
        {"role": "assistant", "content": "done"},
    ]
    expected = (
        f"{BOS}{USER}go{ASSISTANT}{CALLS_BEGIN}" + call("now", "{}") + f"{CALLS_END}{EOS}"
        f"{OUTS_BEGIN}{OUT_BEGIN}r1{OUT_END}{OUTS_END}"
        f"{CALLS_BEGIN}" + call("get_weather", '{"city": "Oslo"}') + f"{CALLS_END}{EOS}"
        f"{OUTS_BEGIN}{OUT_BEGIN}r2{OUT_END}{OUTS_END}done{EOS}"
    )
    assert tokenizer.apply_chat_template(messages, add_generation_prompt=False) == expected


def test_multi_round_fix_applies_to_the_bundled_template_only(tokenizer):
    import json

    source = json.loads((tokenizer.source / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]
    assert fix_multi_round_tool_calls(source) != source
    other = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert fix_multi_round_tool_calls(other) == other


def test_single_round_matches_transformers_with_the_verbatim_template(tokenizer):
    """The fix changes nothing the original template already rendered right; cross-checked against
    transformers' own chat-template renderer on the unmodified template."""
    from transformers import PreTrainedTokenizerFast

    reference = PreTrainedTokenizerFast.from_pretrained(str(tokenizer.source))
    messages = [
        {"role": "system", "content": "sys"},
        *[{k: v for k, v in m.items() if k != "tool_call_id"} for m in CONVERSATION[1:4]],
        {"role": "tool", "content": "22C, rain"},
        CONVERSATION[5],
        {"role": "user", "content": "Thanks!"},
    ]
    messages[2]["tool_calls"] = [
        {**c, "function": {**c["function"], "arguments": '{"city": "Paris"}'}} for c in messages[2]["tool_calls"]
    ]
    for prefix in (2, 3, 5, len(messages)):
        ours = tokenizer.apply_chat_template(messages[:prefix])
        theirs = reference.apply_chat_template(messages[:prefix], tokenize=False, add_generation_prompt=True)
        assert ours == theirs


def test_rendered_calls_parse_back_to_the_same_calls(tokenizer):
    text = tokenizer.apply_chat_template(CONVERSATION[:3], add_generation_prompt=False)
    assistant_turn = text.split(ASSISTANT, 1)[1].removesuffix(EOS)
    content, calls = parse_tool_calls(assistant_turn, tool_names={"get_weather"})
    assert content == ""
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "東京"}')]


def test_think_part_of_past_answers_is_dropped(tokenizer):
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>hmm</think>A"}]
    assert tokenizer.apply_chat_template(messages, add_generation_prompt=False) == f"{BOS}{USER}q{ASSISTANT}A{EOS}"


@pytest.mark.parametrize(
    ("messages", "tools", "match"),
    [
        ([], None, "non-empty list"),
        ("hello", None, "non-empty list"),
        ([{"role": "wizard", "content": "x"}], None, "role must be one of"),
        (["not a dict"], None, "role must be one of"),
        ([{"role": "user"}], None, "needs content"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], None, "text content parts"),
        ([{"role": "user", "content": 5}], None, "string or a list"),
        ([{"role": "assistant", "content": None, "tool_calls": [{"function": {}}]}], None, "function.name"),
        ([{"role": "assistant", "content": None, "tool_calls": "x"}], None, "must be a list"),
        ([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {1j}}}]}], None, "serialisable"),
        ([{"role": "user", "content": "x"}], [{"type": "function"}], r"tools\[0\]"),
        ([{"role": "user", "content": "x"}], ["get_weather"], r"tools\[0\]"),
        ([{"role": "user", "content": "x"}], "get_weather", "tools must be a list"),
    ],
)
def test_bad_input_gives_a_clear_error(tokenizer, messages, tools, match):
    with pytest.raises(ChatTemplateError, match=match):
        tokenizer.apply_chat_template(messages, tools=tools)


def test_template_errors_are_chat_template_errors():
    with pytest.raises(ChatTemplateError, match="does not compile"):
        ChatTemplate("{% for %}", bos_token="<s>", eos_token="</s>")
    strict = ChatTemplate("{{ raise_exception('no system role') }}", bos_token="<s>", eos_token="</s>")
    with pytest.raises(ChatTemplateError, match="no system role"):
        strict.render([{"role": "user", "content": "x"}])
