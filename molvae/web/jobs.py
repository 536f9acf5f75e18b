"""Jobs for the one model: a first-in, first-out queue served by a single worker thread.

Every piece of work that touches the model (a page's job or a JSON API call) becomes a `Job` and waits
in one queue, so requests from several browsers run one after another and none is dropped: the queue
only refuses new work (503) when `max_queued` jobs already wait. A job reports progress as
(done, total) through the `Progress` handed to its task, and can be cancelled: a queued job at once, a
running one at its next progress step (a task checks `Progress.step`, which raises `Cancelled`).
Finished jobs are kept for download, the oldest dropped past `max_jobs_kept`, so memory stays bounded.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from molvae.errors import MolvaeError

__all__ = ["Job", "JobQueue", "Progress", "Cancelled", "QueueFull", "STATES"]

log = logging.getLogger("molvae.web")

STATES = ("queued", "running", "done", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside a task when its job was cancelled."""


class QueueFull(MolvaeError):
    """The queue holds `max_queued` jobs already."""


@dataclass
class Job:
    """One unit of work for the model. `result` is the task's return value once `state` is "done";
    `error` the message once "failed"."""

    kind: str
    params: dict[str, Any]
    task: Callable[[Progress], Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: str = "queued"
    done_steps: int = 0
    total_steps: int = 1
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    result: Any = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    _finished_event: threading.Event = field(default_factory=threading.Event, repr=False)
    _callbacks: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def finished_state(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def on_finish(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the worker thread) when the job finishes; at once if it has."""
        with self._lock:
            if not self.finished_state:
                self._callbacks.append(callback)
                return
        callback()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished_event.wait(timeout)

    def _start(self) -> bool:
        """queued -> running, unless the job was cancelled first (then False)."""
        with self._lock:
            if self.state != "queued":
                return False
            self.state, self.started = "running", time.time()
            return True

    def _cancel_queued(self) -> bool:
        """queued -> cancelled (True), or False when the worker has it already."""
        with self._lock:
            if self.state != "queued":
                return False
            self.state = "finishing"
        self._finish("cancelled")
        return True

    def _finish(self, state: str) -> None:
        with self._lock:
            self.state, self.finished = state, time.time()
            callbacks, self._callbacks = self._callbacks, []
        self._finished_event.set()
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a waiter that went away must not stop the worker
                log.exception("job callback failed")

    def status(self) -> dict[str, Any]:
        """The job as JSON-ready data, without its result."""
        now = time.time()
        return {
            "id": self.id, "kind": self.kind, "state": self.state, "params": self.params,
            "progress": {"done": self.done_steps, "total": self.total_steps},
            "message": self.message, "warnings": list(self.warnings), "error": self.error,
            "queued_s": round((self.started or now) - self.created, 3),
            "run_s": round((self.finished or now) - self.started, 3) if self.started else 0.0,
        }


class Progress:
    """Handed to a task: `total(n)` sets the number of steps, `step(message)` counts one and raises
    `Cancelled` when the job was cancelled."""

    def __init__(self, job: Job):
        self._job = job

    def total(self, n: int) -> None:
        self._job.total_steps = max(int(n), 1)

    def check(self) -> None:
        if self._job.cancel_requested:
            raise Cancelled()

    def step(self, message: str = "") -> None:
        self._job.done_steps = min(self._job.done_steps + 1, self._job.total_steps)
        if message:
            self._job.message = message
        self.check()


class JobQueue:
    """A FIFO of jobs and the one thread that runs them. `submit` adds a job; `get`, `cancel` look one up."""

    def __init__(self, max_queued: int = 256, max_kept: int = 200):
        self.max_queued, self.max_kept = max_queued, max_kept
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._waiting = 0
        self.completed = 0
        self._thread = threading.Thread(target=self._run, name="molvae-model-worker", daemon=True)
        self._thread.start()

    def submit(self, kind: str, params: dict[str, Any], task: Callable[[Progress], Any]) -> Job:
        """Queue a job; raises QueueFull when `max_queued` jobs already wait."""
        job = Job(kind=kind, params=params, task=task)
        with self._lock:
            if self._waiting >= self.max_queued:
                raise QueueFull(f"the server is busy: {self._waiting} jobs are waiting for the model, the limit is "
                                f"{self.max_queued} (max_queued); try again shortly")
            self._waiting += 1
            self._jobs[job.id] = job
            self._evict()
        self._queue.put(job)
        return job

    def _evict(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished_state]
        for job in finished[:max(0, len(finished) - self.max_kept)]:
            del self._jobs[job.id]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Ask a job to stop; a queued one is cancelled at once. None when there is no such job."""
        job = self.get(job_id)
        if job is None or job.finished_state:
            return job
        job.cancel_requested = True
        job._cancel_queued()
        return job

    @property
    def waiting(self) -> int:
        return self._waiting

    def close(self) -> None:
        """Stop the worker after the jobs already queued."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
            if not job._start():  # cancelled while it waited
                continue
            self._execute(job)
            self.completed += 1

    def _execute(self, job: Job) -> None:
        state = "done"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                job.result = job.task(Progress(job))
                job.done_steps = job.total_steps
            except Cancelled:
                state = "cancelled"
            except (MolvaeError, ValueError) as exc:  # bad input found by the library: its message
                job.error, state = str(exc), "failed"
            except Exception as exc:  # a bug: logged with its traceback, the client gets one line
                log.exception("job %s (%s) failed", job.id, job.kind)
                job.error, state = f"internal error ({type(exc).__name__}); the server log has the details", "failed"
        seen = set()
        for w in caught:
            text = str(w.message)
            if issubclass(w.category, (UserWarning, RuntimeWarning)) and text not in seen:
                seen.add(text)
                job.warnings.append(text)
        if state == "cancelled":
            job.result = None
        job._finish(state)
