"""The job runner: background work as leased rows in the `jobs` table, run on a bounded pool.

Lifecycle (docs/APP.md): a job is enqueued `queued`; a worker claims it by taking its lease
(`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL; one atomic `UPDATE ... RETURNING` on SQLite,
which has a single writer) and sets it `running`; the heartbeat renews the lease of every job the
process runs and reads `cancel_requested`. The job ends `done`, `failed` (its error recorded, after
`max_attempts` tries) or `cancelled`. A job whose lease expires (its process died) is claimable
again and its handler resumes from what the subject stored. Stopping the app releases its jobs
(`queued` again) so a restart or another process picks them up at once. Any number of app
processes may share one database: a lease has one owner, so no job runs twice at the same time.

A handler owns one kind of job: `run(ctx)` does the work and calls `ctx.check()` between steps
(it raises JobStopped when the job is cancelled, the app stops, or the lease was lost);
`finish(subject_id, status, error)` brings the subject (an eval run, an agent run, a document)
to the job's final state when the job ends without `run` having done so.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Job, JobStatus, utcnow

log = logging.getLogger("app.jobs")
ACTIVE = (JobStatus.queued, JobStatus.running)


class JobStopped(Exception):
    """Raised by JobContext.check(): the job must stop now; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class JobContext:
    """What a handler gets: the job's row values and a stop signal."""

    job_id: str
    kind: str
    subject_id: str
    owner_id: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""

    def stop_for(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()

    def check(self) -> None:
        """Raise JobStopped if the job was cancelled, the app is stopping or the lease was lost."""
        if self.stop.is_set():
            raise JobStopped(self.reason)

    @property
    def resumed(self) -> bool:
        """True when an earlier attempt ran (and may have stored part of the work)."""
        return self.attempt > 1


class JobHandler(Protocol):
    kind: str
    max_workers: int

    def run(self, ctx: JobContext) -> None: ...

    def finish(self, subject_id: str, status: JobStatus, error: str | None) -> None: ...


@dataclass(frozen=True)
class JobConfig:
    lease_s: float = 30.0
    heartbeat_s: float = 2.0
    poll_s: float = 1.0
    max_attempts: int = 3
    stop_timeout_s: float = 20.0


class JobRunner:
    """Claims, runs, heartbeats and finishes jobs of the registered kinds for one app process."""

    def __init__(self, sessions: sessionmaker[Session], handlers: list[JobHandler], config: JobConfig) -> None:
        self.sessions = sessions
        self.handlers = {h.kind: h for h in handlers}
        self.config = config
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._active: dict[str, tuple[JobContext, Future]] = {}
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=sum(h.max_workers for h in handlers), thread_name_prefix="job")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._expire_dead_local_leases()
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming, ask running jobs to stop, wait for them; they are released for a restart."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.config.stop_timeout_s)
        contexts = [ctx for ctx, _ in self._active.values()]
        for ctx in contexts:
            ctx.stop_for("shutdown")
        wait([future for _, future in list(self._active.values())], timeout=self.config.stop_timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Look for work now (after enqueueing), instead of at the next poll."""
        with self._wake:
            self._wake.notify_all()

    # -- what services call ----------------------------------------------------------------
    def enqueue(self, db: Session, kind: str, subject_id: str, owner_id: str,
                payload: dict[str, Any] | None = None) -> Job:
        """Add a queued job to `db`'s transaction; call `wake()` after committing."""
        if kind not in self.handlers:
            raise ValueError(f"no handler for jobs of kind {kind!r}")
        job = Job(kind=kind, subject_id=subject_id, owner_id=owner_id, payload=payload or {},
                  max_attempts=self.config.max_attempts)
        db.add(job)
        return job

    def cancel(self, kind: str, subject_id: str) -> bool:
        """Cancel the subject's active job: a queued one ends now, a running one stops at its next
        check (here at once, in another process at its next heartbeat). False when none is active."""
        with self.sessions() as db:
            jobs = db.scalars(select(Job).where(Job.kind == kind, Job.subject_id == subject_id,
                                                Job.status.in_(ACTIVE))).all()
            queued = [j for j in jobs if j.status == JobStatus.queued]
            for job in jobs:
                job.cancel_requested = True
            for job in queued:
                job.status, job.finished_at = JobStatus.cancelled, utcnow()
            db.commit()
        if queued:
            self.handlers[kind].finish(subject_id, JobStatus.cancelled, None)
        for job in jobs:
            if job.id in self._active:
                self._active[job.id][0].stop_for("cancelled")
        return bool(jobs)

    def cancel_and_wait(self, db: Session, kind: str, row: Any, terminal: set[str], wait_s: float = 10.0) -> Any:
        """`cancel` the job of `row` (an ORM row with `id` and `status`) and wait up to `wait_s`
        for the row to reach a terminal status; the row, refreshed."""
        if row.status in terminal:
            return row
        if not self.cancel(kind, row.id):
            self.handlers[kind].finish(row.id, JobStatus.cancelled, None)  # no job runs it (e.g. paused)
        deadline = time.monotonic() + wait_s
        db.refresh(row)
        while row.status not in terminal and time.monotonic() < deadline:
            time.sleep(0.1)
            db.refresh(row)
        return row

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        last_beat = 0.0
        while not self._stopping:
            try:
                now = time.monotonic()
                if now - last_beat >= self.config.heartbeat_s:
                    self._heartbeat()
                    self._reap()
                    last_beat = now
                while not self._stopping and self._claim_one():
                    pass
            except Exception:  # noqa: BLE001 - a database hiccup must not end the runner
                log.exception("job runner loop failed; retrying")
                time.sleep(self.config.poll_s)
            with self._wake:
                if not self._stopping:
                    self._wake.wait(min(self.config.poll_s, self.config.heartbeat_s))

    def _free_kinds(self) -> list[str]:
        running: dict[str, int] = {}
        for ctx, _ in self._active.values():
            running[ctx.kind] = running.get(ctx.kind, 0) + 1
        return [kind for kind, h in self.handlers.items() if running.get(kind, 0) < h.max_workers]

    def _claimable(self, kinds: list[str], now: datetime):  # noqa: ANN202 - a SQL expression
        return and_(Job.kind.in_(kinds), Job.cancel_requested.is_(False), Job.attempts < Job.max_attempts,
                    or_(Job.status == JobStatus.queued,
                        and_(Job.status == JobStatus.running, Job.lease_expires_at < now)))

    def _claim_one(self) -> bool:
        kinds = self._free_kinds()
        if not kinds:
            return False
        now = utcnow()
        lease = {"status": JobStatus.running, "lease_owner": self.worker_id, "heartbeat_at": now,
                 "lease_expires_at": now + timedelta(seconds=self.config.lease_s)}
        with self.sessions() as db:
            if db.get_bind().dialect.name == "postgresql":
                job = db.scalars(select(Job).where(self._claimable(kinds, now)).order_by(Job.created_at)
                                 .limit(1).with_for_update(skip_locked=True)).first()
                if job is None:
                    return False
                for key, value in lease.items():
                    setattr(job, key, value)
                job.attempts += 1
            else:  # SQLite: one statement, so two processes cannot both take the row
                first = select(Job.id).where(self._claimable(kinds, now)).order_by(Job.created_at).limit(1)
                claimed = db.execute(update(Job).where(Job.id == first.scalar_subquery())
                                     .values(**lease, attempts=Job.attempts + 1).returning(Job.id)
                                     .execution_options(synchronize_session=False)).first()
                if claimed is None:
                    db.rollback()
                    return False
                job = db.get(Job, claimed[0])
            db.commit()
            ctx = JobContext(job.id, job.kind, job.subject_id, job.owner_id, dict(job.payload), job.attempts,
                             job.max_attempts)
        log.info("job claimed", extra={"job_id": ctx.job_id, "kind": ctx.kind, "subject_id": ctx.subject_id,
                                       "attempt": ctx.attempt})
        self._active[ctx.job_id] = (ctx, self._pool.submit(self._execute, ctx))
        return True

    def _execute(self, ctx: JobContext) -> None:
        handler = self.handlers[ctx.kind]
        try:
            handler.run(ctx)
            self._end(ctx, JobStatus.done, None)
        except JobStopped as stopped:
            if stopped.reason == "cancelled":
                self._end(ctx, JobStatus.cancelled, None)
            elif stopped.reason == "shutdown":
                self._release(ctx)
            # "lease lost": another worker owns the job now; leave its row alone
        except Exception as exc:  # noqa: BLE001 - the job records why it failed
            log.exception("job failed", extra={"job_id": ctx.job_id, "kind": ctx.kind, "attempt": ctx.attempt})
            error = f"{exc.__class__.__name__}: {exc}"
            if ctx.attempt >= ctx.max_attempts:
                self._end(ctx, JobStatus.failed, error)
            else:
                self._release(ctx, error)
        finally:
            self._active.pop(ctx.job_id, None)
            self.wake()

    def _end(self, ctx: JobContext, status: JobStatus, error: str | None) -> None:
        with self.sessions() as db:
            ended = db.execute(update(Job).where(Job.id == ctx.job_id, Job.lease_owner == self.worker_id)
                               .values(status=status, error=error, finished_at=utcnow(), lease_owner=None,
                                       lease_expires_at=None)
                               .execution_options(synchronize_session=False)).rowcount
            db.commit()
        if ended and status != JobStatus.done:
            self.handlers[ctx.kind].finish(ctx.subject_id, status, error)

    def _release(self, ctx: JobContext, error: str | None = None) -> None:
        """Queue the job again (a stopped app, or a failed attempt that will be retried)."""
        values: dict[str, Any] = {"status": JobStatus.queued, "lease_owner": None, "lease_expires_at": None}
        if error is None:  # stopping the app is not the job's fault
            values["attempts"] = Job.attempts - 1
        else:
            values["error"] = error
        with self.sessions() as db:
            db.execute(update(Job).where(Job.id == ctx.job_id, Job.lease_owner == self.worker_id).values(**values)
                       .execution_options(synchronize_session=False))
            db.commit()

    def _heartbeat(self) -> None:
        """Renew the leases of this process's jobs; stop those cancelled or taken over."""
        contexts = {job_id: ctx for job_id, (ctx, _) in list(self._active.items())}
        if not contexts:
            return
        now = utcnow()
        with self.sessions() as db:
            rows = db.execute(update(Job).where(Job.id.in_(contexts), Job.lease_owner == self.worker_id,
                                                Job.status == JobStatus.running)
                              .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=self.config.lease_s))
                              .returning(Job.id, Job.cancel_requested)
                              .execution_options(synchronize_session=False)).all()
            db.commit()
        renewed = {job_id: cancel for job_id, cancel in rows}
        for job_id, ctx in contexts.items():
            if job_id not in renewed:
                ctx.stop_for("lease lost")
            elif renewed[job_id]:
                ctx.stop_for("cancelled")

    def _reap(self) -> None:
        """End jobs whose lease expired and that must not run again: cancelled, or out of attempts."""
        now = utcnow()
        expired = and_(Job.status == JobStatus.running, Job.lease_expires_at < now)
        with self.sessions() as db:
            jobs = db.scalars(select(Job).where(expired, Job.kind.in_(list(self.handlers)),
                                                or_(Job.cancel_requested.is_(True),
                                                    Job.attempts >= Job.max_attempts))).all()
            ended = []
            for job in jobs:
                status = JobStatus.cancelled if job.cancel_requested else JobStatus.failed
                error = None if job.cancel_requested else (
                    f"its worker was lost {job.attempts} times (last: {job.lease_owner})")
                done = db.execute(update(Job).where(Job.id == job.id, expired)
                                  .values(status=status, error=error, finished_at=now, lease_owner=None)
                                  .execution_options(synchronize_session=False)).rowcount
                if done:
                    ended.append((job.kind, job.subject_id, status, error))
            db.commit()
        for kind, subject_id, status, error in ended:
            self.handlers[kind].finish(subject_id, status, error)

    def _expire_dead_local_leases(self) -> None:
        """Leases held by processes of this host that no longer exist end now, not after lease_s."""
        host = socket.gethostname()
        with self.sessions() as db:
            rows = db.execute(select(Job.id, Job.lease_owner).where(Job.status == JobStatus.running)).all()
            dead = [job_id for job_id, owner in rows
                    if owner and owner != self.worker_id and _dead_local_owner(owner, host)]
            if dead:
                db.execute(update(Job).where(Job.id.in_(dead)).values(lease_expires_at=utcnow() - timedelta(seconds=1))
                           .execution_options(synchronize_session=False))
                db.commit()
                log.warning("found jobs of a crashed app process; resuming them", extra={"jobs": dead})


def _dead_local_owner(owner: str, host: str) -> bool:
    """True for a worker id of this host whose process is gone (or is this process: a restart with
    the same pid, as PID 1 of a container restarts)."""
    owner_host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if owner_host != host or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False

