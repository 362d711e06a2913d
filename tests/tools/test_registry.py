"""Tool registry: schemas, validation errors returned as results, call log."""
import json

from pydantic import BaseModel, Field

from tools.registry import Tool, ToolError, ToolRegistry


class AddArgs(BaseModel):
    a: int = Field(description="first")
    b: int = Field(2, description="second")


def _add(args: AddArgs) -> str:
    if args.a < 0:
        raise ToolError("a must not be negative")
    return str(args.a + args.b)


def _registry() -> ToolRegistry:
    return ToolRegistry().register(Tool("add", "Add two integers.", AddArgs, _add),
                                   Tool("boom", "Always fails.", AddArgs, lambda a: 1 / 0, dangerous=True))


def test_schema_is_openai_tool_format():
    schema = _registry().schemas()[0]
    assert schema == {"type": "function", "function": {
        "name": "add", "description": "Add two integers.",
        "parameters": {"type": "object", "required": ["a"], "properties": {
            "a": {"type": "integer", "description": "first"},
            "b": {"type": "integer", "description": "second", "default": 2}}}}}


def test_valid_call_runs_and_is_logged():
    registry = _registry()
    record = registry.call("add", '{"a": 40}')
    assert record.ok and record.result == "42" and record.error is None
    assert registry.call("add", {"a": 1, "b": 1}).result == "2"
    assert [(c.name, json.loads(c.arguments)) for c in registry.calls] == [("add", {"a": 40}), ("add", {"a": 1, "b": 1})]


def test_bad_input_becomes_an_error_result():
    registry = _registry()
    cases = {
        ("add", '{"a": "many"}'): "invalid arguments for add: a: Input should be a valid integer",
        ("add", "{}"): "invalid arguments for add: a: Field required",
        ("add", '{"a": 1'): "arguments are not valid JSON",
        ("add", "[1, 2]"): "arguments must be a JSON object",
        ("nope", "{}"): "unknown tool 'nope'; available tools: add, boom",
        ("add", '{"a": -1}'): "a must not be negative",
    }
    for (name, arguments), message in cases.items():
        record = registry.call(name, arguments)
        assert not record.ok
        assert record.result.startswith("error: ") and message in record.result, record.result
    assert len(registry.calls) == len(cases)


def test_tool_bug_is_reported_not_raised():
    registry = _registry()
    record = registry.call("boom", '{"a": 1}')
    assert not record.ok
    assert record.result == "error: internal error in tool boom: ZeroDivisionError: division by zero"
    assert registry.is_dangerous("boom") and not registry.is_dangerous("add")


def test_long_results_are_clipped():
    registry = ToolRegistry(max_result_chars=10).register(
        Tool("long", "x", AddArgs, lambda a: "x" * 25))
    result = registry.call("long", '{"a": 1}').result
    assert result.startswith("x" * 10) and "15 more characters truncated" in result
