"""Chat formats by model family: detection from a checkpoint's template, `--chat-format`, and the
exact V3.1 (thinking and not, tool calls) and R1 renderings."""
import json
import shutil
from pathlib import Path

import pytest

from model_runtime.chat_formats import ChatFormatError, detect_chat_format, template_for
from model_runtime.chat_template import ChatTemplateError
from model_runtime.tokenizer import bundled_tokenizer_dir, load_tokenizer
from model_runtime.tool_calls import parse_tool_calls

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
OUT_BEGIN, OUT_END = "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>"
TINY = Path(__file__).resolve().parents[2] / "models" / "deepseek-v3-tiny"

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
# DeepSeek-V3.1's tool prompt (model card), written out by hand.
V3_1_TOOLS_BLOCK = (
    "## Tools\nYou have access to the following tools:\n\n"
    "### get_weather\nDescription: Current weather of a city.\n\n"
    'Parameters: {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}\n\n'
    "IMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    f"{CALLS_BEGIN}{CALL_BEGIN}tool_call_name{SEP}tool_call_arguments{CALL_END}{{{{additional_tool_calls}}}}{CALLS_END}\n\n"
    "Where:\n\n- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces\n"
)
TOOL_CONVERSATION = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in Paris and Tokyo?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "get_weather", "arguments": '{"city": "東京"}'}}]},
    {"role": "tool", "content": "18C, sunny"},
    {"role": "tool", "content": "22C, rain"},
    {"role": "assistant", "content": "Paris 18C, Tokyo 22C."},
    {"role": "user", "content": "Thanks!"},
]


@pytest.fixture(scope="module")
def v3_template() -> str:
    return json.loads((bundled_tokenizer_dir() / "tokenizer_config.json").read_text(encoding="utf-8"))["chat_template"]


@pytest.fixture(scope="module")
def v31():
    return load_tokenizer(chat_format_name="deepseek_v3_1")


def test_each_bundled_template_is_detected_as_its_format(v3_template):
    for name in ("deepseek_v3", "deepseek_r1", "deepseek_v3_1"):
        assert detect_chat_format(template_for(name, v3_template)).name == name
    assert detect_chat_format("{{ messages[0]['content'] }}").name == "deepseek_v3"  # unknown family
    with pytest.raises(ChatFormatError, match="unknown chat format"):
        template_for("llama3", v3_template)


def test_checkpoint_template_decides_the_format(tmp_path, v3_template):
    """A checkpoint that ships V3.1's template is served as V3.1 without any flag."""
    shutil.copy(TINY / "tokenizer.json", tmp_path / "tokenizer.json")
    assert load_tokenizer(tmp_path).chat_format.name == "deepseek_v3"
    (tmp_path / "chat_template.jinja").write_text(template_for("deepseek_v3_1", v3_template), encoding="utf-8")
    tokenizer = load_tokenizer(tmp_path)
    assert tokenizer.chat_format.name == "deepseek_v3_1" and tokenizer.chat_format.call_style == "v3_1"
    assert load_tokenizer(tmp_path, chat_format_name="deepseek_v3").chat_format.name == "deepseek_v3"


def test_v3_1_generation_prompt_in_both_modes(v31):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "1+1?"}]
    assert v31.apply_chat_template(messages) == f"{BOS}sys{USER}1+1?{ASSISTANT}</think>"
    assert v31.apply_chat_template(messages, template_kwargs={"thinking": True}) == f"{BOS}sys{USER}1+1?{ASSISTANT}<think>"
    assert v31.apply_chat_template(messages, template_kwargs={"thinking": False}).endswith("</think>")


def test_v3_1_multi_turn_drops_past_thinking(v31):
    messages = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>hmm</think>A1"},
                {"role": "user", "content": "q2"}]
    assert v31.apply_chat_template(messages, template_kwargs={"thinking": True}) == (
        f"{BOS}{USER}q1{ASSISTANT}</think>A1{EOS}{USER}q2{ASSISTANT}<think>")


def test_v3_1_tool_round_renders_exactly_and_parses_back(v31):
    expected = (
        f"{BOS}You are a weather bot.\n\n{V3_1_TOOLS_BLOCK}"
        f"{USER}Weather in Paris and Tokyo?{ASSISTANT}</think>{CALLS_BEGIN}"
        f'{CALL_BEGIN}get_weather{SEP}{{"city": "Paris"}}{CALL_END}'
        f'{CALL_BEGIN}get_weather{SEP}{{"city": "東京"}}{CALL_END}{CALLS_END}{EOS}'
        f"{OUT_BEGIN}18C, sunny{OUT_END}{OUT_BEGIN}22C, rain{OUT_END}Paris 18C, Tokyo 22C.{EOS}"
        f"{USER}Thanks!{ASSISTANT}</think>"
    )
    assert v31.apply_chat_template(TOOL_CONVERSATION, tools=[WEATHER_TOOL]) == expected
    # after tool results the model answers straight away: no generation prompt
    assert v31.apply_chat_template(TOOL_CONVERSATION[:5]).endswith(f"22C, rain{OUT_END}")
    turn = expected.split(f"{ASSISTANT}</think>")[1].split(EOS)[0]
    content, calls = parse_tool_calls(turn, tool_names={"get_weather"})
    assert content == "" and [c.arguments for c in calls] == ['{"city": "Paris"}', '{"city": "東京"}']
    ids = v31.encode_chat(TOOL_CONVERSATION, tools=[WEATHER_TOOL])
    assert ids.count(v31.special_ids["tool_sep"]) == 3 and ids.count(v31.special_ids["think_end"]) == 2


def test_r1_opens_the_thinking_and_keeps_v3_tool_calls():
    r1 = load_tokenizer(chat_format_name="deepseek_r1")
    assert r1.chat_format.thinking == "always"
    assert r1.apply_chat_template([{"role": "user", "content": "q"}]) == f"{BOS}{USER}q{ASSISTANT}<think>\n"
    rendered = r1.apply_chat_template(TOOL_CONVERSATION[:3], tools=[WEATHER_TOOL], add_generation_prompt=False)
    assert f"{CALL_BEGIN}function{SEP}get_weather\n```json\n" in rendered


def test_template_kwargs_cannot_replace_the_conversation(v31):
    with pytest.raises(ChatTemplateError, match="cannot set messages"):
        v31.apply_chat_template([{"role": "user", "content": "q"}], template_kwargs={"messages": []})
