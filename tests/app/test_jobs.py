"""The job runner against real databases (SQLite file, PostgreSQL): claims, leases, retries, cancel."""
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from app.core.config import Settings
from app.db.migrate import upgrade
from app.db.models import Job, JobStatus, User, utcnow
from app.db.session import make_engine, make_sessionmaker
from app.services.jobs import JobConfig, JobContext, JobRunner

FAST = JobConfig(lease_s=2.0, heartbeat_s=0.2, poll_s=0.1, max_attempts=3, stop_timeout_s=5.0)


class Recorder:
    """A handler that records every run; `block` holds runs until released, `fail` raises."""

    kind = "test"

    def __init__(self, max_workers: int = 2, fail: int = 0, block: bool = False) -> None:
        self.max_workers = max_workers
        self.fail = fail
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.runs: list[tuple[str, int, str]] = []  # (subject, attempt, worker)
        self.finished: list[tuple[str, JobStatus, str | None]] = []
        self.lock = threading.Lock()

    def run(self, ctx: JobContext) -> None:
        with self.lock:
            self.runs.append((ctx.subject_id, ctx.attempt, threading.current_thread().name))
        while not self.release.wait(0.05):
            ctx.check()
        ctx.check()
        if ctx.attempt <= self.fail:
            raise RuntimeError(f"attempt {ctx.attempt} fails")

    def finish(self, subject_id: str, status: JobStatus, error: str | None) -> None:
        with self.lock:
            self.finished.append((subject_id, status, error))


@pytest.fixture
def sessions(database_url, tmp_path):
    engine = make_engine(Settings(database_url=database_url, var_dir=tmp_path))
    upgrade(engine)
    maker = make_sessionmaker(engine)
    with maker() as db:  # the database lives for the module: start each test without jobs
        db.execute(delete(Job))
        if db.get(User, "u" * 32) is None:
            db.add(User(id="u" * 32, name="jobs"))
        db.commit()
    yield maker
    engine.dispose()


def enqueue(runner: JobRunner, sessions, n: int, prefix: str = "s", **fields) -> list[str]:
    ids = []
    with sessions() as db:
        for i in range(n):
            job = runner.enqueue(db, "test", f"{prefix}{i:03d}", "u" * 32)
            for key, value in fields.items():
                setattr(job, key, value)
            db.flush()
            ids.append(job.id)
        db.commit()
    runner.wake()
    return ids


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def statuses(sessions) -> dict[str, JobStatus]:
    with sessions() as db:
        return {j.subject_id: j.status for j in db.scalars(select(Job))}


def test_two_runners_on_one_database_run_every_job_exactly_once(sessions):
    a, b = Recorder(max_workers=3), Recorder(max_workers=3)
    first, second = JobRunner(sessions, [a], FAST), JobRunner(sessions, [b], FAST)
    enqueue(first, sessions, 40)
    first.start()
    second.start()
    try:
        wait_for(lambda: set(statuses(sessions).values()) == {JobStatus.done})
    finally:
        first.stop()
        second.stop()
    subjects = [s for s, _, _ in a.runs + b.runs]
    assert sorted(subjects) == [f"s{i:03d}" for i in range(40)]  # each once, none twice
    assert a.runs and b.runs  # both took part
    assert all(attempt == 1 for _, attempt, _ in a.runs + b.runs)


def test_a_job_whose_worker_died_is_resumed_as_a_second_attempt(sessions):
    handler = Recorder()
    runner = JobRunner(sessions, [handler], FAST)
    past = utcnow() - timedelta(seconds=5)
    enqueue(runner, sessions, 1, status=JobStatus.running, attempts=1, lease_owner="elsewhere:1:dead",
            lease_expires_at=past)
    live = enqueue(runner, sessions, 1, prefix="live", status=JobStatus.running, attempts=1, lease_owner="elsewhere:2:alive",
                   lease_expires_at=utcnow() + timedelta(minutes=5))
    runner.start()
    try:
        wait_for(lambda: statuses(sessions)["s000"] == JobStatus.done)
        time.sleep(0.5)
    finally:
        runner.stop()
    assert handler.runs[0][:2] == ("s000", 2)
    with sessions() as db:
        assert db.get(Job, live[0]).status == JobStatus.running  # its lease is still held: untouched
    assert [s for s, _, _ in handler.runs] == ["s000"]


def test_a_lease_lost_three_times_fails_the_job_and_its_subject(sessions):
    handler = Recorder()
    runner = JobRunner(sessions, [handler], FAST)
    enqueue(runner, sessions, 1, status=JobStatus.running, attempts=3, lease_owner="elsewhere:1:dead",
            lease_expires_at=utcnow() - timedelta(seconds=5))
    runner.start()
    try:
        wait_for(lambda: statuses(sessions)["s000"] == JobStatus.failed)
    finally:
        runner.stop()
    assert handler.runs == []
    (subject, status, error), = handler.finished
    assert (subject, status) == ("s000", JobStatus.failed) and "worker was lost 3 times" in error


def test_a_failing_job_is_retried_then_failed_with_its_error(sessions):
    flaky, broken = Recorder(fail=1), Recorder(fail=99)
    broken.kind = "broken"
    runner = JobRunner(sessions, [flaky, broken], FAST)
    enqueue(runner, sessions, 1)
    with sessions() as db:
        db.add(Job(kind="broken", subject_id="b", owner_id="u" * 32, max_attempts=3))
        db.commit()
    runner.start()
    try:
        wait_for(lambda: statuses(sessions) == {"s000": JobStatus.done, "b": JobStatus.failed})
    finally:
        runner.stop()
    assert [a for _, a, _ in flaky.runs] == [1, 2] and [a for _, a, _ in broken.runs] == [1, 2, 3]
    with sessions() as db:
        failed = db.scalar(select(Job).where(Job.subject_id == "b"))
        assert failed.error == "RuntimeError: attempt 3 fails" and failed.attempts == 3
    assert broken.finished == [("b", JobStatus.failed, "RuntimeError: attempt 3 fails")]


def test_cancel_ends_a_queued_job_at_once_and_stops_a_running_one(sessions):
    handler = Recorder(max_workers=1, block=True)
    runner = JobRunner(sessions, [handler], FAST)
    enqueue(runner, sessions, 2)
    runner.start()
    try:
        wait_for(lambda: len(handler.runs) == 1)
        running, queued = handler.runs[0][0], ({"s000", "s001"} - {handler.runs[0][0]}).pop()
        assert runner.cancel("test", queued) is True
        assert statuses(sessions)[queued] == JobStatus.cancelled
        assert runner.cancel("test", running) is True
        wait_for(lambda: statuses(sessions)[running] == JobStatus.cancelled, timeout=5)
        assert runner.cancel("test", running) is False  # nothing active any more
    finally:
        runner.stop()
    assert sorted(handler.finished) == sorted([(queued, JobStatus.cancelled, None),
                                               (running, JobStatus.cancelled, None)])
    assert [s for s, _, _ in handler.runs] == [running]  # the cancelled queued job never ran


def test_cancel_reaches_a_job_running_in_another_process_by_heartbeat(sessions):
    handler = Recorder(max_workers=1, block=True)
    worker, other = JobRunner(sessions, [handler], FAST), JobRunner(sessions, [Recorder()], FAST)
    enqueue(worker, sessions, 1)
    worker.start()
    try:
        wait_for(lambda: len(handler.runs) == 1)
        assert other.cancel("test", "s000") is True  # `other` does not run it: only the flag is set
        wait_for(lambda: statuses(sessions)["s000"] == JobStatus.cancelled, timeout=5)
    finally:
        worker.stop()


def test_stopping_releases_running_jobs_for_the_next_process(sessions):
    handler = Recorder(max_workers=1, block=True)
    runner = JobRunner(sessions, [handler], FAST)
    enqueue(runner, sessions, 1)
    runner.start()
    wait_for(lambda: len(handler.runs) == 1)
    runner.stop()
    with sessions() as db:
        job = db.scalar(select(Job))
        assert job.status == JobStatus.queued and job.lease_owner is None and job.attempts == 0
    again = Recorder()
    successor = JobRunner(sessions, [again], FAST)
    successor.start()
    try:
        wait_for(lambda: statuses(sessions)["s000"] == JobStatus.done)
    finally:
        successor.stop()
    assert again.runs[0][:2] == ("s000", 1)
