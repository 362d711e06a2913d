"""Test runner executed INSIDE the sandbox, one process per (problem, program).

Standalone on purpose: it imports only the standard library (and numpy, lazily, for float
comparisons), because it is copied into the sandbox's working directory and run there as a
script. The harness never imports it; `evals.execution` ships its source.

Protocol. The working directory holds `task.pkl`, a pickled dict written by the harness:

- ``mode``: ``"io"`` (call the entry point on each input and compare with ``expected``) or
  ``"check"`` (run HumanEval's original ``check(candidate)`` as one test).
- ``record``: true for the trusted canonical solution: nothing is compared; outputs and CPU
  times of every test are saved to ``outputs.pkl``.
- ``program``: Python source defining the entry point; ``entry_point``: its name.
- ``test_code``: source defining ``check`` (check mode).
- ``inputs``: list of argument lists (io/record mode); ``expected``: outputs (io mode).
- ``fingerprinted``: indices of tests whose expected output is stored as ``fingerprint(output)``
  because it is large (io mode; see ``fingerprint``).
- ``atol``: tolerance (io mode); ``special``: ``"find_zero"`` for HumanEval/32 (see EVALS.md).
- ``cpu_limits``: per-test CPU-second limits; ``wall_limits``: per-test wall-clock backstops;
  ``load_limit``: seconds allowed to execute ``program`` itself.

The runner deletes ``task.pkl`` once read (the candidate must not read the expected outputs),
silences fds 1 and 2 while candidate code runs, and writes one JSON object to the original
stdout: ``{"load_error": str|null, "results": "PFT..", "errors": {index: message}}`` where each
result letter is P (passed), F (failed: wrong answer or exception), T (time limit) or S (skipped:
the tests after the first time-out are not run, since the program has failed already and a slow
program would otherwise spend its time limit on every remaining input).
"""
import copy
import hashlib
import io
import json
import math
import numbers
import os
import pickle
import signal
import sys
import time

MAX_ERRORS_REPORTED = 5
MAX_ERROR_CHARS = 300
FINGERPRINT_OVER_BYTES = 64 << 10


class TestTimeout(BaseException):
    """Raised by the timers; a BaseException so that `except Exception` in candidate code
    cannot swallow it."""


def _on_timer(signum, frame):
    raise TestTimeout("time limit exceeded")


def _arm(cpu_seconds, wall_seconds):
    signal.setitimer(signal.ITIMER_PROF, max(cpu_seconds, 1e-3))
    signal.setitimer(signal.ITIMER_REAL, max(wall_seconds, 1e-3))


def _disarm():
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)


def _poly(xs, x):
    """HumanEval/32's polynomial, as EvalPlus evaluates it for the find_zero oracle."""
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _is_floats(x):
    """EvalPlus's rule for which expected outputs are compared with a tolerance."""
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return type(x).__module__ == "numpy" and str(getattr(x, "dtype", "")) in ("float64", "float32")


def _canonical(obj):
    """A stand-in for `obj` that is the same for outputs that compare equal with ==, for the
    types benchmark outputs use: bool and integral floats become int (True == 1 == 1.0), other
    numbers become int/float, dicts and sets become sorted fingerprints, lists and tuples recurse
    (they stay distinct: [1] != (1,)), anything else becomes its repr."""
    t = type(obj)
    if t is int or t is str or t is bytes or obj is None:
        return obj
    if t is float:
        return int(obj) if obj.is_integer() else obj
    if t is list or t is tuple:
        return t([x if type(x) is int or type(x) is str else _canonical(x) for x in obj])
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        value = float(obj)
        return int(value) if value.is_integer() else value
    if isinstance(obj, dict):
        return ("<dict>", sorted(fingerprint(k) + fingerprint(v) for k, v in obj.items()))
    if isinstance(obj, (set, frozenset)):
        return ("<set>", sorted(fingerprint(k) for k in obj))
    return ("<repr>", repr(obj))


def fingerprint(obj):
    """sha256 of the pickled `_canonical(obj)` (pickle's memo off, so equal values pickle
    equally): how a large expected output is stored and compared."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.fast = True
    pickler.dump(_canonical(obj))
    return hashlib.sha256(buffer.getbuffer()).hexdigest()


def _matches(out, exp, inp, atol, special):
    """EvalPlus's output comparison: exact, or np.allclose for floats; find_zero is checked by
    evaluating the polynomial at the returned point."""
    if special == "find_zero":
        return abs(_poly(*inp, out)) <= atol
    if atol == 0 and _is_floats(exp):
        atol = 1e-6
    if bool(out == exp):
        return True
    if atol == 0:
        return False
    import numpy as np

    if type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(out) != len(exp):
        return False
    return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))


def _message(exc):
    text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def _run_tests(task, env, record):
    """Run each test; returns (letters, errors, outputs, cpu_times)."""
    mode = task["mode"]
    cpu_limits, wall_limits = task["cpu_limits"], task["wall_limits"]
    letters, errors, outputs, cpu_times = [], {}, [], []
    fingerprinted = set(task.get("fingerprinted", ()))
    if mode == "check":
        exec(task["test_code"], env)
        calls = [lambda: env["check"](env[task["entry_point"]])]
        inputs = [None]
    else:
        fn = env[task["entry_point"]]
        inputs = task["inputs"]
        calls = [(lambda inp=inp: fn(*copy.deepcopy(inp))) for inp in inputs]
    for i, call in enumerate(calls):
        started = time.process_time()
        try:
            _arm(cpu_limits[i], wall_limits[i])
            try:
                out = call()
            finally:
                _disarm()
            cpu_times.append(time.process_time() - started)
            if record:
                outputs.append(_recordable(out, i, fingerprinted))
                letters.append("P")
            elif i in fingerprinted:
                letters.append("P" if fingerprint(out) == task["expected"][i] else "F")
                if letters[-1] == "F" and len(errors) < MAX_ERRORS_REPORTED:
                    errors[i] = "wrong answer"
            elif mode == "check" or _matches(out, task["expected"][i], inputs[i], task["atol"], task["special"]):
                letters.append("P")
            else:
                letters.append("F")
                if len(errors) < MAX_ERRORS_REPORTED:
                    errors[i] = "wrong answer"
        except TestTimeout:
            letters.append("T")
            cpu_times.append(time.process_time() - started)
            if len(errors) < MAX_ERRORS_REPORTED:
                errors[i] = "time limit exceeded"
            letters.append("S" * (len(calls) - i - 1))
            break
        except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything, SystemExit included
            _disarm()
            letters.append("F")
            cpu_times.append(time.process_time() - started)
            if len(errors) < MAX_ERRORS_REPORTED:
                errors[i] = _message(exc)
    return "".join(letters), errors, outputs, cpu_times, sorted(fingerprinted)


def _recordable(out, index, fingerprinted):
    """A canonical output as stored: itself, or its fingerprint when large and not a float."""
    if _is_floats(out) or len(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)) <= FINGERPRINT_OVER_BYTES:
        return out
    fingerprinted.add(index)
    return fingerprint(out)


def main():
    """Read task.pkl, run the tests, report JSON on the original stdout."""
    with open("task.pkl", "rb") as fh:
        task = pickle.load(fh)
    os.remove("task.pkl")
    record = bool(task.get("record"))
    report_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    signal.signal(signal.SIGPROF, _on_timer)
    signal.signal(signal.SIGALRM, _on_timer)
    n_tests = 1 if task["mode"] == "check" else len(task["inputs"])
    report = {"load_error": None, "results": "", "errors": {}}
    env = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        _arm(task["load_limit"], task["load_limit"] * 2)
        try:
            exec(compile(task["program"], "solution.py", "exec"), env)
        finally:
            _disarm()
        if task["entry_point"] not in env:
            raise NameError(f"the program does not define {task['entry_point']}")
    except BaseException as exc:  # noqa: BLE001
        report["load_error"] = _message(exc)
        report["results"] = "F" * n_tests
    else:
        try:
            letters, errors, outputs, cpu_times, fingerprinted = _run_tests(task, env, record)
        except BaseException as exc:  # noqa: BLE001 - e.g. the candidate broke the test's imports
            report["load_error"] = _message(exc)
            report["results"] = "F" * n_tests
        else:
            report["results"], report["errors"] = letters, {str(k): v for k, v in errors.items()}
            if record:
                with open("outputs.pkl", "wb") as fh:
                    pickle.dump({"outputs": outputs, "cpu_times": cpu_times, "fingerprinted": fingerprinted}, fh)
    sys.stdout.flush()
    os.write(report_fd, json.dumps(report).encode())
    os._exit(0)


if __name__ == "__main__":
    main()
