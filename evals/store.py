"""A run directory: run.json (what was run), samples.jsonl (one graded sample per line, appended
as each finishes, which is what makes a rerun resume) and summary.json (the scores)."""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

RUN_FILE, SAMPLES_FILE, SUMMARY_FILE = "run.json", "samples.jsonl", "summary.json"


class RunDirError(RuntimeError):
    """The run directory cannot be used: it holds a different run, is busy, or is unreadable."""


def read_samples(path: Path) -> list[dict]:
    """Samples from a samples.jsonl; a torn last line (the process died mid-write) is ignored,
    a later sample for the same (problem_id, sample_index) never replaces the first."""
    if not path.is_file():
        return []
    samples, seen = [], set()
    lines = path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
            key = (sample["problem_id"], int(sample["sample_index"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if number >= len(lines) - 1:
                continue
            raise RunDirError(f"{path}:{number} is not a sample record ({exc})") from exc
        if key not in seen:
            seen.add(key)
            samples.append(sample)
    return samples


class RunStore:
    """Exclusive handle on a run directory; `identity` must match the one recorded by earlier runs."""

    def __init__(self, out_dir: Path, identity: dict) -> None:
        self.dir = Path(out_dir)
        if self.dir.exists() and not self.dir.is_dir():
            raise RunDirError(f"{self.dir} exists and is not a directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.dir / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise RunDirError(f"another run is using {self.dir}") from exc
        self._check_identity(identity)
        self.samples = read_samples(self.dir / SAMPLES_FILE)
        self._repair_torn_tail()
        self._out = open(self.dir / SAMPLES_FILE, "a", encoding="utf-8")

    def _check_identity(self, identity: dict) -> None:
        path = self.dir / RUN_FILE
        if path.is_file():
            try:
                recorded = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise RunDirError(f"{path} is not valid JSON") from exc
            differing = sorted(k for k in identity if recorded.get(k) != identity[k])
            if differing:
                details = ", ".join(f"{k}: {recorded.get(k)!r} there, {identity[k]!r} now" for k in differing)
                raise RunDirError(f"{self.dir} holds a different run ({details}); use another --out directory")
        else:
            path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")

    def _repair_torn_tail(self) -> None:
        """Drop a torn last line (a write cut short by a crash) so that appends start clean."""
        path = self.dir / SAMPLES_FILE
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)

    def done(self) -> set[tuple[str, int]]:
        return {(s["problem_id"], int(s["sample_index"])) for s in self.samples}

    def append(self, sample: dict) -> None:
        """Record one graded sample durably (flushed and fsynced before returning)."""
        self._out.write(json.dumps(sample, ensure_ascii=False) + "\n")
        self._out.flush()
        os.fsync(self._out.fileno())
        self.samples.append(sample)

    def write_summary(self, summary: dict) -> None:
        tmp = self.dir / (SUMMARY_FILE + ".tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / SUMMARY_FILE)

    def close(self) -> None:
        self._out.close()
        self._lock.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_run(out_dir: Path) -> dict:
    """A finished (or partial) run as plain dicts: {"run", "summary", "samples"}, e.g. for storing
    in a database. Raises RunDirError when the directory holds no run."""
    out_dir = Path(out_dir)
    if not (out_dir / RUN_FILE).is_file():
        raise RunDirError(f"{out_dir} holds no evals run (no {RUN_FILE})")
    summary_path = out_dir / SUMMARY_FILE
    try:
        run = json.loads((out_dir / RUN_FILE).read_text(encoding="utf-8"))
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{out_dir} has a corrupt JSON file: {exc}") from exc
    return {"run": run, "summary": summary, "samples": read_samples(out_dir / SAMPLES_FILE)}
