"""Code grading in the sandbox: broken programs score 0 and never stop the harness; time limits,
per-test results and HumanEval/32's special oracle."""
import copy
import os

import pytest

from evals.datasets import load_problems
from evals.execution import ExecConfig
from evals.harness import grade_completions

BROKEN = {
    "wrong return": "    return not False\n",
    "exception": "    raise ValueError('nope')\n",
    "infinite loop": "    while True:\n        pass\n",
    "swallowed timeout": "    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n",
    "sleep": "    import time\n    time.sleep(1000)\n",
    "sys.exit": "    import sys\n    sys.exit(0)\n",
    "os._exit": "    import os\n    os._exit(0)\n",
    "kill parent": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "kill group": "    import os, signal\n    os.killpg(0, signal.SIGKILL)\n",
    "kill everything": "    import os, signal\n    os.kill(-1, signal.SIGKILL)\n",
    "kill the harness": f"    import os, signal\n    os.kill({os.getpid()}, signal.SIGKILL)\n",
    "forged report": ("    import json, os\n    for fd in range(1, 8):\n        try:\n"
                      "            os.write(fd, json.dumps({'load_error': None, 'results': 'P', 'errors': {}}).encode())\n"
                      "        except OSError:\n            pass\n    os._exit(0)\n"),
    "syntax error": "    return (\n",
    "memory bomb": "    x = [0] * (10**10)\n    return True\n",
    "fork bomb": "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
    "output flood": "    while True:\n        print('x' * 100000)\n",
}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return ExecConfig(workers=2, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("benchmark", ["humaneval", "humaneval_plus"])
def test_broken_solutions_score_zero_and_the_harness_survives(benchmark, config):
    problem = load_problems(benchmark)[0]  # has_close_elements: returns a bool
    completions = {problem.task_id: [*BROKEN.values(), problem.canonical_solution]}
    result = grade_completions(benchmark, completions, exec_config=config)
    verdicts = dict(zip([*BROKEN, "canonical"], result["samples"], strict=True))
    for name in BROKEN:
        assert verdicts[name]["passed"] is False, name
        assert verdicts[name]["error"], name
    assert verdicts["canonical"]["passed"] is True  # still running, still grading correctly
    assert result["metrics"]["pass@1"] == pytest.approx(1 / (len(BROKEN) + 1))
    assert "ValueError: nope" in verdicts["exception"]["error"]
    assert "time limit" in verdicts["infinite loop"]["error"]


def test_per_test_results_time_limits_and_skips(config):
    problem = load_problems("humaneval_plus")[0]  # has_close_elements(numbers, threshold)
    n_base, n_tests = len(problem.base_inputs), len(problem.base_inputs) + len(problem.plus_inputs)
    # right on short inputs, wrong on long ones, endless on one particular input
    partial = "    if len(numbers) > 6:\n        return False\n" + problem.canonical_solution
    endless = "    if threshold == 0.3:\n        while True:\n            pass\n" + problem.canonical_solution
    result = grade_completions("humaneval_plus", {problem.task_id: [partial, endless]}, exec_config=config)
    partial_sample, endless_sample = result["samples"]
    assert partial_sample["n_tests"] == n_tests and set(partial_sample["tests"]) == {"P", "F"}
    expected = "".join("P" if len(inp[0]) <= 6 or not any(
        abs(a - b) < inp[1] for i, a in enumerate(inp[0]) for j, b in enumerate(inp[0]) if i != j) else "F"
        for inp in problem.base_inputs + problem.plus_inputs)
    assert partial_sample["tests"] == expected
    first_timeout = next(i for i, inp in enumerate(problem.base_inputs + problem.plus_inputs) if inp[1] == 0.3)
    tests = endless_sample["tests"]
    assert tests[:first_timeout] == "P" * first_timeout and tests[first_timeout] == "T"
    assert set(tests[first_timeout + 1:]) <= {"S"} and len(tests) == n_tests
    assert partial_sample["base_passed"] is (set(expected[:n_base]) == {"P"})


def test_find_zero_accepts_any_root_and_rejects_non_roots(config):
    problem = load_problems("humaneval_plus")[32]
    # A root by bisection on a widening bracket (an odd-degree polynomial changes sign), Newton-
    # polished; where that is ill-conditioned, Newton from 0 like the canonical solution. Pure
    # Python: importing numpy inside the function (an earlier version) could take most of the 0.2 s
    # per-test CPU limit on a busy machine. Many answers differ from the canonical root and are roots.
    other_root = (
        "    dxs = [i * c for i, c in enumerate(xs)][1:]\n"
        "    starts, lo, hi = [], -1.0, 1.0\n"
        "    for _ in range(60):\n"
        "        if poly(xs, lo) * poly(xs, hi) <= 0:\n"
        "            for _ in range(200):\n"
        "                mid = (lo + hi) / 2\n"
        "                lo, hi = (lo, mid) if poly(xs, lo) * poly(xs, mid) <= 0 else (mid, hi)\n"
        "            starts.append((lo + hi) / 2)\n"
        "            break\n"
        "        lo, hi = 2 * lo, 2 * hi\n"
        "    for x in starts + [0.0]:\n"
        "        for _ in range(1000):\n"
        "            fx = poly(xs, x)\n"
        "            if abs(fx) < 1e-5:\n"
        "                return x\n"
        "            x -= fx / poly(dxs, x)\n"
        "    return x\n"
    )
    off_by_one = problem.canonical_solution.replace("    return x\n", "    return x + 1\n")
    assert off_by_one != problem.canonical_solution

    def outputs(body):  # trusted, in-process: only to show the roots really differ
        env = {}
        exec(problem.prompt + body, env)
        return [env["find_zero"](*copy.deepcopy(inp)) for inp in problem.base_inputs]

    differing = [a for a, b in zip(outputs(other_root), outputs(problem.canonical_solution), strict=True) if abs(a - b) > 1e-3]
    assert differing, "the alternative solution should find other roots than the canonical one"
    result = grade_completions("humaneval_plus", {problem.task_id: [other_root, off_by_one]}, exec_config=config)
    assert [s["passed"] for s in result["samples"]] == [True, False]
