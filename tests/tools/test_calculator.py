"""Calculator / CAS tool: sympy runs in the sandbox (its parser uses eval)."""
import pytest

from tools.calculator import calculator_tool
from tools.registry import ToolRegistry
from tools.sandbox import Sandbox


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return ToolRegistry().register(calculator_tool(Sandbox()))


def test_exact_arithmetic_and_algebra(registry):
    assert registry.call("calculator", {"expression": "2^10 / 3"}).result == "1024/3 ≈ 341.33333333333333333"
    assert registry.call("calculator", {"expression": "x**2 - 4 = 0", "operation": "solve"}).result == "[-2, 2]"
    assert registry.call("calculator", {"expression": "x*sin(x)", "operation": "integrate",
                                        "variable": "x"}).result == "-x*cos(x) + sin(x)"


def test_bad_expressions_are_errors_for_the_model(registry):
    record = registry.call("calculator", {"expression": "2 +* )"})
    assert not record.ok and record.result.startswith("error: could not compute")
    assert not registry.call("calculator", {"expression": "x", "operation": "sqrt"}).ok
    assert not registry.call("calculator", {"expression": "x", "variable": "x; import os"}).ok


def test_code_in_the_expression_stays_in_the_sandbox(registry, tmp_path):
    marker = tmp_path / "ran.txt"
    expression = f"__import__('pathlib').Path('{marker}').write_text('pwned')"
    registry.call("calculator", {"expression": expression})
    assert not marker.exists()
