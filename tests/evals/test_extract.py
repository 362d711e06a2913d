"""Turning replies into programs and answers."""
from evals.datasets import CodeProblem
from evals.extract import build_program, extract_answer, extract_code, last_boxed, truncate_body

PROBLEM = CodeProblem(
    task_id="T/0", entry_point="add",
    prompt='import math\n\n\ndef helper(x):\n    return x\n\n\ndef add(a: int, b: int) -> int:\n    """Add."""\n',
    canonical_solution="    return a + b\n", test="",
)


def run(program: str) -> int:
    env: dict = {}
    exec(program, env)  # trusted test strings only
    return env["add"](2, 3)


def test_chat_reply_with_full_function_keeps_prompt_helpers():
    reply = "Sure!\n```python\ndef add(a, b):\n    return helper(a) + b\n```\nDone."
    program = build_program(PROBLEM, reply, "chat")
    assert program.startswith(PROBLEM.prompt) and run(program) == 5


def test_chat_reply_picks_block_that_defines_entry_point():
    reply = "```bash\npip install x\n```\n```python\nprint('usage')\n```\n```py\ndef add(a, b):\n    return a + b\n```"
    assert "def add" in extract_code(reply, "add")
    assert run(build_program(PROBLEM, reply, "chat")) == 5


def test_chat_reply_that_is_only_a_body_keeps_the_signature():
    assert run(build_program(PROBLEM, "return a + b", "chat")) == 5
    assert run(build_program(PROBLEM, "```python\n    return a + b\n```", "chat")) == 5
    assert run(build_program(PROBLEM, "```python\ndef add(a, b):\n    return a + b", "chat")) == 5  # unterminated


def test_completion_is_cut_where_the_function_ends():
    body = "    return a + b\n\n\nprint(add(1, 2))\nraise SystemExit\n"
    assert truncate_body(body) == "    return a + b\n\n\n"
    assert run(build_program(PROBLEM, body, "completion")) == 5


def test_last_boxed_with_nested_braces():
    text = r"First \boxed{1}, then \boxed{\frac{\sqrt{2}}{2}} is final."
    assert last_boxed(text) == r"\frac{\sqrt{2}}{2}"
    assert last_boxed(r"so \boxed 5$.") == "5"
    assert last_boxed(r"\fbox{7}") == "7"
    assert last_boxed(r"\boxed{\frac{1}{2}") is None
    assert last_boxed("no box") is None


def test_answer_falls_back_to_the_answer_is():
    assert extract_answer(r"We get $x=2$. The answer is $\frac{3}{4}$.") == r"\frac{3}{4}"
    assert extract_answer("so the final answer is 12") == "12"
    assert extract_answer(r"The answer is 3. Check: \boxed{4}") == "4"
    assert extract_answer("I do not know") is None
