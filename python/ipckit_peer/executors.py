"""Where request handlers run.

An executor is any callable that takes a zero-argument function and runs it, now or later, on
whatever thread the host wants. The function does the whole job (calls the handler and sends the
response), so the executor's return value is ignored and it may return before the job ran.
"""

import collections
import logging
import threading
import time

log = logging.getLogger("ipckit_peer")


class ThreadPool(object):
    """The default executor: a small pool of worker threads, so that a long handler does not
    block polling, cancellation or heartbeats.

    The workers are daemon threads: a process that is told to stop (Ctrl-C, then ``close()``)
    exits even while a handler that never looks at ``ctx.cancelled`` still runs. (The standard
    ``ThreadPoolExecutor`` joins its workers at interpreter exit, so such a handler kept the
    process alive for as long as it ran.)"""

    def __init__(self, max_workers=4):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._jobs = collections.deque()
        self._cond = threading.Condition()
        self._workers = []
        self._waiting = 0  # workers waiting for a job
        self._promised = 0  # of those, how many were woken for a job already queued
        self._closed = False

    def __call__(self, job):
        with self._cond:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._jobs.append(job)
            if self._waiting > self._promised:
                self._promised += 1
                self._cond.notify()
            elif len(self._workers) < self._max_workers:
                worker = threading.Thread(
                    target=self._work, name="ipckit-peer-%d" % len(self._workers), daemon=True
                )
                self._workers.append(worker)
                worker.start()

    def _work(self):
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._waiting += 1
                    self._cond.wait()
                    self._waiting -= 1
                    self._promised = max(0, self._promised - 1)
                if not self._jobs:
                    return  # shut down, nothing left
                job = self._jobs.popleft()
            try:
                job()
            except Exception:  # a job reports its own errors; this keeps the worker alive
                log.exception("an ipckit_peer job raised")

    def shutdown(self, wait=False):
        """No more jobs; the workers end once the queued ones are done. ``wait``: join them."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            workers = list(self._workers)
        if wait:
            for worker in workers:
                if worker is not threading.current_thread():
                    worker.join()


class MainThreadQueue(object):
    """An executor that queues jobs for the host's own thread to run.

    Pass it as ``executor=``; on the thread that may touch the host's API (for example from a
    ``bpy.app.timers`` callback in Blender) call :meth:`run_pending` regularly. Thread-safe.
    """

    def __init__(self):
        self._jobs = collections.deque()
        self._ready = threading.Condition(threading.Lock())

    def __call__(self, job):
        with self._ready:
            self._jobs.append(job)
            self._ready.notify()

    def __len__(self):
        with self._ready:
            return len(self._jobs)

    def run_pending(self, timeout=0.0, max_jobs=None):
        """Runs the queued jobs on the calling thread; returns how many ran.

        ``timeout``: how long to wait for a first job when none is queued (0: do not wait).
        ``max_jobs``: stop after that many (None: run all that are queued).
        """
        ran = 0
        deadline = time.monotonic() + timeout
        while max_jobs is None or ran < max_jobs:
            with self._ready:
                while not self._jobs:
                    remaining = deadline - time.monotonic()
                    if ran or remaining <= 0:
                        return ran
                    self._ready.wait(remaining)
                job = self._jobs.popleft()
            job()
            ran += 1
        return ran
