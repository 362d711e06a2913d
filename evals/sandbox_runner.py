"""Test runner executed INSIDE the sandbox, one process per (problem, program).

Standalone on purpose: it imports only the standard library (and numpy, lazily, for float
comparisons), because it is copied into the sandbox's working directory and run there as a
script. The harness never imports it; `evals.execution` ships its source.

Protocol. The working directory holds `task.pkl`, a pickled dict written by the harness (or, for
trusted reference runs, ``{"batch": [task, ...]}``: each task runs in a forked child, its outputs
go to ``outputs-<index>.pkl``, and the report is a JSON list of the tasks' reports):

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
silences fds 0-2 while candidate code runs, and writes one JSON object to the original stdout:
``{"nonce": task["nonce"], "load_error": str|null, "results": "PFT..", "errors": {index: message}}``
(the harness rejects a report without the task's random nonce, so a program that writes a report
of its own to the saved stdout fails), where each
result letter is P (passed), F (failed: wrong answer or exception), T (time limit) or S (skipped:
the run ends at the first time-out, since the program has failed already and a slow program would
otherwise spend its time limit on every remaining input).
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
import time

MAX_ERRORS_REPORTED = 5
MAX_ERROR_CHARS = 300
FINGERPRINT_OVER_BYTES = 64 << 10


class Run:
    """The report being built. `finish` writes it to the saved stdout and ends the process; the
    timers call `time_out`, which finishes at once: the timed-out test is T and the ones after it
    S, and no exception is raised that candidate code could catch and ignore."""

    def __init__(self, report_fd, nonce, n_tests):
        self.report_fd, self.nonce, self.n_tests = report_fd, nonce, n_tests
        self.letters, self.errors = [], {}
        self.loading = True

    def fail(self, index, letter, message):
        self.letters.append(letter)
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors[str(index)] = message

    def finish(self, load_error=None):
        if load_error is not None:
            self.letters = ["F"] * self.n_tests
        report = {"nonce": self.nonce, "load_error": load_error, "results": "".join(self.letters),
                  "errors": self.errors}
        os.write(self.report_fd, json.dumps(report).encode())
        os._exit(0)

    def time_out(self, signum, frame):
        _disarm()
        if self.loading:
            self.finish("time limit exceeded while loading the program")
        index = len(self.letters)
        self.fail(index, "T", "time limit exceeded")
        self.letters.extend("S" * (self.n_tests - index - 1))
        self.finish()


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


def _run_tests(task, env, run):
    """Run each test, appending its letter to `run`; returns (outputs, cpu_times, fingerprinted)
    for a record run."""
    mode, record = task["mode"], bool(task.get("record"))
    outputs, cpu_times = [], []
    fingerprinted = set(task.get("fingerprinted", ()))
    if mode == "check":
        exec(task["test_code"], env)
        calls = [lambda: env["check"](env[task["entry_point"]])]
    else:
        fn = env[task["entry_point"]]
        calls = [(lambda inp=inp: fn(*copy.deepcopy(inp))) for inp in task["inputs"]]
    for i, call in enumerate(calls):
        started = time.process_time()
        try:
            _arm(task["cpu_limits"][i], task["wall_limits"][i])
            try:
                out = call()
            finally:
                _disarm()
            cpu_times.append(time.process_time() - started)
            if record:
                outputs.append(_recordable(out, i, fingerprinted))
                passed = True
            elif mode == "check":
                passed = True
            elif i in fingerprinted:
                passed = fingerprint(out) == task["expected"][i]
            else:
                passed = _matches(out, task["expected"][i], task["inputs"][i], task["atol"], task["special"])
            if passed:
                run.letters.append("P")
            else:
                run.fail(i, "F", "wrong answer")
        except BaseException as exc:  # noqa: BLE001 - candidate code may raise anything, SystemExit included
            run.fail(i, "F", _message(exc))
    return outputs, cpu_times, sorted(fingerprinted)


def _recordable(out, index, fingerprinted):
    """A canonical output as stored: itself, or its fingerprint when large and not a float."""
    if _is_floats(out) or len(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)) <= FINGERPRINT_OVER_BYTES:
        return out
    fingerprinted.add(index)
    return fingerprint(out)


def _run_one(task, report_fd, outputs_path):
    """Run one task and report it on `report_fd`; never returns."""
    run = Run(report_fd, task.pop("nonce"), 1 if task["mode"] == "check" else len(task["inputs"]))
    signal.signal(signal.SIGPROF, run.time_out)
    signal.signal(signal.SIGALRM, run.time_out)
    env = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        _arm(task["load_limit"], task["load_limit"] * 2)
        try:
            exec(compile(task["program"], "solution.py", "exec"), env)
        finally:
            _disarm()
        if task["entry_point"] not in env:
            raise NameError(f"the program does not define {task['entry_point']}")
        run.loading = False
        outputs, cpu_times, fingerprinted = _run_tests(task, env, run)
    except BaseException as exc:  # noqa: BLE001 - a broken program, or one that broke the test's imports
        run.finish(_message(exc))
    if task.get("record"):
        with open(outputs_path, "wb") as fh:
            pickle.dump({"outputs": outputs, "cpu_times": cpu_times, "fingerprinted": fingerprinted}, fh)
    run.finish()


def _run_batch(tasks, report_fd):
    """Trusted reference runs only: each task in a forked child (cheaper than a fresh sandbox per
    task, still one process per task); reports a JSON list, null for a child that died silently."""
    reports = []
    for index, task in enumerate(tasks):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _run_one(task, write_end, f"outputs-{index}.pkl")
        os.close(write_end)
        chunks = []
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
        os.close(read_end)
        os.waitpid(pid, 0)
        reports.append(b"".join(chunks).decode() or "null")
    os.write(report_fd, ("[" + ",".join(reports) + "]").encode())
    os._exit(0)


def main():
    """Read task.pkl (one task, or {"batch": [task, ...]}), run, report JSON on the original stdout."""
    with open("task.pkl", "rb") as fh:
        payload = pickle.load(fh)
    os.remove("task.pkl")
    report_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if "batch" in payload:
        _run_batch(payload["batch"], report_fd)
    _run_one(payload, report_fd, "outputs.pkl")


if __name__ == "__main__":
    main()
