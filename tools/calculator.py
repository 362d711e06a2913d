"""Calculator / computer algebra tool (sympy).

sympy parses expressions with ``eval``, so the model's input is never parsed in this process:
the computation runs in the sandbox, which gets the request as JSON on stdin.
"""
from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from tools.registry import Tool, ToolError
from tools.sandbox import Sandbox, SandboxLimits

Operation = Literal["evaluate", "simplify", "expand", "factor", "solve", "diff", "integrate", "limit"]

CAS_LIMITS = SandboxLimits(cpu_seconds=20, wall_seconds=30, memory_bytes=2 << 30)

# Runs inside the sandbox: reads {"expression", "operation", "variable", "point"} from stdin.
CAS_PROGRAM = r"""
import json, sys
import sympy
from sympy.parsing.sympy_parser import (parse_expr, standard_transformations,
                                        implicit_multiplication_application, convert_xor)

req = json.load(sys.stdin)
transformations = standard_transformations + (implicit_multiplication_application, convert_xor)

def parse(text):
    if text.count("=") == 1 and "==" not in text:
        left, right = text.split("=")
        return sympy.Eq(parse_expr(left, transformations=transformations),
                        parse_expr(right, transformations=transformations))
    return parse_expr(text, transformations=transformations)

expr = sympy.sympify(parse(req["expression"]))
symbols = sorted(expr.free_symbols, key=lambda s: s.name)
var = sympy.Symbol(req["variable"]) if req.get("variable") else (symbols[0] if symbols else None)
op = req["operation"]
if op == "evaluate":
    value = sympy.simplify(expr)
    approx = value.is_number and not value.is_Integer and value.is_finite
    print(json.dumps({"result": f"{value} ≈ {sympy.N(value, 20)}" if approx else str(value)}))
    sys.exit(0)
if op in ("solve", "diff", "integrate", "limit") and var is None:
    raise ValueError(f"operation {op} needs a variable")
result = {
    "simplify": lambda: sympy.simplify(expr),
    "expand": lambda: sympy.expand(expr),
    "factor": lambda: sympy.factor(expr),
    "solve": lambda: sympy.solve(expr, var),
    "diff": lambda: sympy.diff(expr, var),
    "integrate": lambda: sympy.integrate(expr, var),
    "limit": lambda: sympy.limit(expr, var, parse(req.get("point") or "0")),
}[op]()
print(json.dumps({"result": str(result)}))
"""


class CalculatorArgs(BaseModel):
    expression: str = Field(description="Math expression or equation, e.g. '2**10 / 3', 'x**2 - 4 = 0', 'sin(x)*x'")
    operation: Operation = Field("evaluate", description="What to do with the expression")
    variable: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                 description="Variable for solve/diff/integrate/limit")
    point: str | None = Field(None, description="Point for limit, e.g. '0' or 'oo'")


def calculate(sandbox: Sandbox, args: CalculatorArgs) -> str:
    """Run the CAS request in the sandbox and return the result text."""
    result = sandbox.run_python(CAS_PROGRAM, stdin=json.dumps(args.model_dump()), limits=CAS_LIMITS)
    if result.timed_out:
        raise ToolError("the computation took too long")
    if not result.ok:
        last = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
        raise ToolError(f"could not compute: {last[0]}")
    return json.loads(result.stdout)["result"]


def calculator_tool(sandbox: Sandbox) -> Tool:
    return Tool("calculator", "Exact arithmetic and computer algebra (sympy): evaluate, simplify, expand, "
                "factor, solve, diff, integrate, limit.", CalculatorArgs, lambda a: calculate(sandbox, a))
