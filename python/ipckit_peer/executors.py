"""Where request handlers run.

An executor is any callable that takes a zero-argument function and runs it, now or later, on
whatever thread the host wants. The function does the whole job (calls the handler and sends the
response), so the executor's return value is ignored and it may return before the job ran.
"""

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class ThreadPool(object):
    """The default executor: a small pool of worker threads, so that a long handler does not
    block polling, cancellation or heartbeats."""

    def __init__(self, max_workers=4):
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ipckit-peer")

    def __call__(self, job):
        self._pool.submit(job)

    def shutdown(self, wait=False):
        self._pool.shutdown(wait=wait)


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
